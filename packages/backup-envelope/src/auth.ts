// The job's OpenBao identity: Kubernetes auth with the projected ServiceAccount token (role
// backup-<cluster> on mount k8s-host), or a plain token (tests, break-glass). The token is
// used for a few Transit calls and revoked at the end; it is never logged.
import { readFile } from 'node:fs/promises';
import { isOpenBaoError, type OpenBaoAuthConfig, type OpenBaoClient } from '@kdc/shared/openbao';
import { BackupError, describeError } from './errors.ts';

/** The job offers Kubernetes auth (in a cluster) and a token (tests, break-glass). */
export type AuthSettings = Extract<OpenBaoAuthConfig, { method: 'kubernetes' | 'token' }>;

export interface Session {
  client: OpenBaoClient;
  /** Revokes a token we obtained by logging in (a given token is left alone). */
  close(): Promise<void>;
}

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (!text) throw new Error('the file is empty');
    return text;
  } catch (error) {
    throw new BackupError(
      'IO_FAILED',
      `cannot read the ${what} from ${path}: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}

export async function openBaoSession(base: OpenBaoClient, auth: AuthSettings): Promise<Session> {
  if (auth.method === 'token') {
    const token = auth.tokenFile ? await readSecretFile(auth.tokenFile, 'OpenBao token') : auth.token!;
    return { client: base.withToken(token), close: async () => undefined };
  }
  const jwt = await readSecretFile(auth.tokenFile, 'projected ServiceAccount token');
  try {
    const login = await base.loginKubernetes(auth.mount, auth.role, jwt);
    const client = base.withToken(login.clientToken);
    return { client, close: () => client.revokeSelf().catch(() => undefined) };
  } catch (error) {
    if (isOpenBaoError(error)) {
      const why = error.errors.join('; ') || `HTTP ${error.status}`;
      const hint =
        error.kind === 'denied'
          ? `: the ServiceAccount must be bound to role ${auth.role}, and the token's audience must match the role's`
          : error.kind === 'invalid'
            ? `: does role ${auth.role} exist on auth/${auth.mount}?`
            : '';
      throw new BackupError(
        'IO_FAILED',
        `OpenBao Kubernetes login (mount ${auth.mount}, role ${auth.role}) failed: ${why}${hint}`,
        { status: error.status },
        { cause: error },
      );
    }
    throw new BackupError(
      'IO_FAILED',
      `OpenBao Kubernetes login (mount ${auth.mount}, role ${auth.role}) failed: ${describeError(error)}`,
      {},
      { cause: error },
    );
  }
}
