// How the CLI reaches a cluster's DataStore: flags (or env) -> an EtcdConnection for the shared
// gRPC reader (@kdc/shared/etcd). The files are read here so that a missing file is a usage error
// naming the flag, not a TLS failure later.
import { readFileSync } from 'node:fs';
import type { EtcdConnection } from '@kdc/shared/etcd';
import { flagOrEnv, type FlagSpecs } from '../terminal/args.ts';
import { usageError } from '../errors.ts';

export const ETCD_FLAGS: FlagSpecs = {
  'etcd-endpoint': {
    type: 'string',
    value: 'url',
    help: "etcd client URL of the clusters' DataStore, http(s)://host:2379 (default: $ETCD_ENDPOINT); needed to prove no etcd row still uses an old key version",
  },
  'etcd-ca-file': { type: 'string', value: 'file', help: 'PEM CA of etcd (default: $ETCD_CA_FILE)' },
  'etcd-cert-file': { type: 'string', value: 'file', help: 'client certificate for etcd (default: $ETCD_CERT_FILE)' },
  'etcd-key-file': { type: 'string', value: 'file', help: 'client key for etcd (default: $ETCD_KEY_FILE)' },
};

export function etcdSettings(
  flags: Record<string, string | boolean>,
  env: Record<string, string | undefined>,
): EtcdConnection | null {
  const endpoint = flagOrEnv(flags, 'etcd-endpoint', env, ['ETCD_ENDPOINT']);
  const files = {
    ca: flagOrEnv(flags, 'etcd-ca-file', env, ['ETCD_CA_FILE']),
    cert: flagOrEnv(flags, 'etcd-cert-file', env, ['ETCD_CERT_FILE']),
    key: flagOrEnv(flags, 'etcd-key-file', env, ['ETCD_KEY_FILE']),
  };
  if (!endpoint) {
    if (files.ca || files.cert || files.key)
      throw usageError('--etcd-ca-file/--etcd-cert-file/--etcd-key-file need --etcd-endpoint https://host:2379');
    return null;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw usageError(`--etcd-endpoint "${endpoint}" is not a URL: write http(s)://host:2379`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`--etcd-endpoint "${endpoint}" must be http:// or https://`);
  if (url.pathname.replace(/\/+$/, '') || url.search || url.hash)
    throw usageError(`--etcd-endpoint "${endpoint}" must be only http(s)://host:port, without a path`);
  if (Boolean(files.cert) !== Boolean(files.key))
    throw usageError('--etcd-cert-file and --etcd-key-file go together: pass both or neither');
  if (url.protocol === 'http:' && (files.ca || files.cert))
    throw usageError(`--etcd-endpoint "${endpoint}" is http:// but TLS files were given: write https://`);
  const read = (flag: string, path: string | undefined) => {
    if (!path) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw usageError(`cannot read --${flag} ${path}: ${(error as Error).message}`);
    }
  };
  const out: EtcdConnection = { endpoint: endpoint.replace(/\/+$/, '') };
  const caPem = read('etcd-ca-file', files.ca);
  const certPem = read('etcd-cert-file', files.cert);
  const keyPem = read('etcd-key-file', files.key);
  if (caPem) out.caPem = caPem;
  if (certPem) out.certPem = certPem;
  if (keyPem) out.keyPem = keyPem;
  return out;
}
