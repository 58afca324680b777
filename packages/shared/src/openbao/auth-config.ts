// How a program logs in to OpenBao, as its flags say: one type and one reader for the KMS plugin
// and the backup job (the controllers use a token file: token-keeper.ts).
import type { FlagReader, FlagSpecs } from '../config/flags.ts';
import { OPENBAO_K8S_AUTH_MOUNT } from '../names.ts';

/** Where kubelet projects the ServiceAccount token for OpenBao (SPEC: audience openbao). */
export const DEFAULT_TOKEN_FILE = '/var/run/secrets/openbao/token';

export type OpenBaoAuthConfig =
  | { method: 'kubernetes'; mount: string; role: string; tokenFile: string }
  /** tokenFile wins over token when both are given. */
  | { method: 'token'; tokenFile?: string; token?: string }
  | { method: 'approle'; mount: string; roleId: string; secretIdFile: string }
  | { method: 'userpass'; mount: string; username: string; passwordFile: string };

export type OpenBaoAuthMethod = OpenBaoAuthConfig['method'];
export const OPENBAO_AUTH_METHODS: readonly OpenBaoAuthMethod[] = ['kubernetes', 'token', 'approle', 'userpass'];

/** The flags readOpenBaoAuth reads; a program declares those it offers. */
type AuthFlag =
  | 'auth-method'
  | 'auth-mount'
  | 'auth-role'
  | 'token-file'
  | 'approle-role-id'
  | 'approle-secret-id-file'
  | 'userpass-username'
  | 'userpass-password-file';

export function readOpenBaoAuth<F extends FlagSpecs, M extends OpenBaoAuthMethod>(
  flags: FlagReader<F>,
  env: Record<string, string | undefined>,
  options: {
    methods: readonly M[];
    /** The Kubernetes role when --auth-role is absent, and the sentence that says how it is named. */
    defaultRole?: { role?: string; unless: string };
  },
): Extract<OpenBaoAuthConfig, { method: M }> | undefined {
  const auth = readAuth(flags, env, options);
  // readAuth returned only a method of options.methods (it refused the others).
  return auth as Extract<OpenBaoAuthConfig, { method: M }> | undefined;
}

function readAuth<F extends FlagSpecs>(
  flags: FlagReader<F>,
  env: Record<string, string | undefined>,
  options: { methods: readonly OpenBaoAuthMethod[]; defaultRole?: { role?: string; unless: string } },
): OpenBaoAuthConfig | undefined {
  const get = (flag: AuthFlag) => flags.get(flag);
  const required = (flag: AuthFlag, why: string) => flags.required(flag, why);
  const method = get('auth-method') as OpenBaoAuthMethod;
  const mount = get('auth-mount');
  if (!options.methods.includes(method)) {
    const choices =
      options.methods.length === 2 ? options.methods.join(' or ') : `one of ${options.methods.join(', ')}`;
    flags.fail(`--auth-method: "${method}" is not ${choices}`);
    return undefined;
  }
  switch (method) {
    case 'kubernetes': {
      const role = get('auth-role') ?? options.defaultRole?.role;
      if (!role)
        flags.fail(
          options.defaultRole
            ? `--auth-role: required with --auth-method=kubernetes ${options.defaultRole.unless} (or set OPENBAO_AUTH_ROLE)`
            : '--auth-role: required with --auth-method=kubernetes',
        );
      return {
        method,
        mount: mount ?? OPENBAO_K8S_AUTH_MOUNT,
        role: role ?? '',
        tokenFile: get('token-file') ?? DEFAULT_TOKEN_FILE,
      };
    }
    case 'token': {
      const token = env.OPENBAO_TOKEN || env.VAULT_TOKEN;
      const tokenFile = get('token-file');
      if (!token && !tokenFile) flags.fail('--token-file: required with --auth-method=token (or set OPENBAO_TOKEN)');
      return { method, ...(tokenFile ? { tokenFile } : {}), ...(token ? { token } : {}) };
    }
    case 'approle':
      return {
        method,
        mount: mount ?? 'approle',
        roleId: required('approle-role-id', ' with --auth-method=approle'),
        secretIdFile: required('approle-secret-id-file', ' with --auth-method=approle'),
      };
    case 'userpass':
      return {
        method,
        mount: mount ?? 'userpass',
        username: required('userpass-username', ' with --auth-method=userpass'),
        passwordFile: required('userpass-password-file', ' with --auth-method=userpass'),
      };
  }
}
