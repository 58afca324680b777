// OpenBao access for operator commands: address, token and CA from the environment the
// bao/vault CLIs use (flags override); the OpenBao namespace is the project's organisation.
import { readFileSync } from 'node:fs';
import { OpenBaoClient, OpenBaoError, type KubeClient } from '@kdc/shared';
import { flagOrEnv, type FlagSpecs } from '../terminal/args.ts';
import { failure, usageError } from '../errors.ts';
import { organizationOf } from './kube.ts';

export const OPENBAO_FLAGS: FlagSpecs = {
  'openbao-addr': { type: 'string', value: 'url', help: 'OpenBao address (default: $OPENBAO_ADDR, else $VAULT_ADDR)' },
  'openbao-ca-file': {
    type: 'string',
    value: 'file',
    help: 'PEM bundle to verify OpenBao (default: $OPENBAO_CACERT, else $VAULT_CACERT)',
  },
  'openbao-token-file': {
    type: 'string',
    value: 'file',
    help: 'file holding the OpenBao token (default: $OPENBAO_TOKEN, else $VAULT_TOKEN)',
  },
  'openbao-namespace': {
    type: 'string',
    value: 'ns',
    help: 'OpenBao namespace (default: $OPENBAO_NAMESPACE, else the project namespace label kube-dc.com/organization, else root)',
  },
};

export interface OpenBaoSettings {
  addr: string;
  token: string;
  caPem?: string;
  /** Explicit namespace (flag or env); undefined = derive from the organisation label. */
  namespace?: string;
}

const readFile = (flag: string, path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw usageError(`cannot read ${flag} ${path}: ${(error as Error).message}`);
  }
};

/** Pure apart from reading the files it is pointed at. */
export function openBaoSettings(
  flags: Record<string, string | boolean>,
  env: Record<string, string | undefined>,
): OpenBaoSettings {
  const addr = flagOrEnv(flags, 'openbao-addr', env, ['OPENBAO_ADDR', 'VAULT_ADDR']);
  if (!addr)
    throw usageError(
      'no OpenBao address: set OPENBAO_ADDR (or VAULT_ADDR) or pass --openbao-addr https://openbao.example:8200',
    );
  if (!/^https?:\/\//.test(addr))
    throw usageError(`OpenBao address "${addr}" is not an http(s) URL: fix --openbao-addr / OPENBAO_ADDR`);
  const tokenFile = typeof flags['openbao-token-file'] === 'string' ? flags['openbao-token-file'] : undefined;
  const token = tokenFile
    ? readFile('--openbao-token-file', tokenFile).trim()
    : flagOrEnv({}, '', env, ['OPENBAO_TOKEN', 'VAULT_TOKEN']);
  if (!token)
    throw usageError('no OpenBao token: set OPENBAO_TOKEN (or VAULT_TOKEN) or pass --openbao-token-file <file>');
  const caFile = flagOrEnv(flags, 'openbao-ca-file', env, ['OPENBAO_CACERT', 'VAULT_CACERT']);
  const namespace = flagOrEnv(flags, 'openbao-namespace', env, ['OPENBAO_NAMESPACE']);
  return {
    addr,
    token,
    ...(caFile ? { caPem: readFile('--openbao-ca-file', caFile) } : {}),
    ...(namespace ? { namespace } : {}),
  };
}

export async function openBaoFor(
  kube: KubeClient,
  projectNamespace: string,
  settings: OpenBaoSettings,
): Promise<{ client: OpenBaoClient; namespaceLabel: string }> {
  const namespace = settings.namespace ?? (await organizationOf(kube, projectNamespace));
  const client = new OpenBaoClient({
    endpoint: settings.addr,
    token: settings.token,
    ...(settings.caPem ? { caBundle: settings.caPem } : {}),
    ...(namespace ? { namespace } : {}),
    timeoutMs: 30_000,
  });
  return { client, namespaceLabel: namespace ? `OpenBao namespace ${namespace}` : 'OpenBao root namespace' };
}

/** OpenBao failures with what to check; the message never includes the token. */
export function openBaoFailure(what: string, error: unknown): Error {
  if (error instanceof OpenBaoError) {
    if (error.kind === 'denied')
      return failure(
        `${what}: OpenBao refused the token (${error.status}): use a token whose policy allows it (and check the OpenBao namespace)`,
      );
    if (error.kind === 'sealed') return failure(`${what}: OpenBao is sealed or unavailable (503)`);
    if (error.kind === 'unavailable')
      return failure(`${what}: cannot reach OpenBao (${error.message}); check OPENBAO_ADDR and OPENBAO_CACERT`);
    return failure(`${what}: ${error.message}`);
  }
  return failure(`${what}: ${error instanceof Error ? error.message : String(error)}`);
}
