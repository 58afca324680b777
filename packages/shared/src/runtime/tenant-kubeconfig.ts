import { X509Certificate, createPrivateKey } from 'node:crypto';
import { parse } from 'yaml';

// A tenant control plane's admin kubeconfig lives in the tenant's namespace, where the tenant can
// overwrite it. client-node's KubeConfig would run its `exec` plugins and `auth-provider`
// commands, read the files it names (tokenFile, client-certificate, certificate-authority) and
// connect wherever `server` points, all inside a controller shared by every tenant. This reader
// takes only inline material (a CA, and a client certificate + key or a bearer token) and never
// the address: the caller connects to what Kamaji reports for the control plane.

export type TenantKubeconfigErrorKind =
  'Malformed' | 'NoContext' | 'MissingCA' | 'ForbiddenField' | 'NoCredentials' | 'BadCredentials';

export class TenantKubeconfigError extends Error {
  readonly kind: TenantKubeconfigErrorKind;
  constructor(kind: TenantKubeconfigErrorKind, message: string) {
    super(message);
    this.name = 'TenantKubeconfigError';
    this.kind = kind;
  }
}

export type TenantAuth =
  { kind: 'clientCertificate'; certPem: string; keyPem: string } | { kind: 'token'; token: string };

export interface TenantCredentials {
  caPem: string;
  auth: TenantAuth;
}

export const MAX_TENANT_KUBECONFIG_BYTES = 256 * 1024;
const MAX_TOKEN_CHARS = 8192;
const WHAT_TO_DO =
  'the admin kubeconfig must carry certificate-authority-data and either client-certificate-data + client-key-data or token, inline';

// Fields that make client-node run a program, read a file, or talk to another host; named so the
// message says exactly what was refused.
const FORBIDDEN_USER: Record<string, string> = {
  exec: 'runs a credential plugin',
  'auth-provider': 'uses an auth provider (a command or a token file)',
  tokenFile: 'reads a token from a file',
  'token-file': 'reads a token from a file',
  'client-certificate': 'reads a certificate from a file',
  'client-key': 'reads a key from a file',
  username: 'uses basic authentication',
  password: 'uses basic authentication',
  as: 'impersonates',
  'as-uid': 'impersonates',
  'as-groups': 'impersonates',
  'as-user-extra': 'impersonates',
};
const FORBIDDEN_CLUSTER: Record<string, string> = {
  'certificate-authority': 'reads the CA from a file',
  'proxy-url': 'sends requests through a proxy',
  'tls-server-name': 'overrides the name the server certificate is checked against',
};
const ALLOWED_USER = new Set(['client-certificate-data', 'client-key-data', 'token', 'extensions']);
const ALLOWED_CLUSTER = new Set([
  'server',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'extensions',
  'disable-compression',
]);

type Entry = { name?: unknown; [k: string]: unknown };
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Field names go into a status message: only plain identifiers are echoed. */
const fieldName = (key: string) => (/^[A-Za-z][A-Za-z0-9-]{0,39}$/.test(key) ? key : 'a field');

function named(list: unknown, kind: string, name: unknown, body: string): Record<string, unknown> {
  if (typeof name !== 'string' || !name)
    throw new TenantKubeconfigError('NoContext', `the current context names no ${kind}; ${WHAT_TO_DO}`);
  const entry = (Array.isArray(list) ? (list as Entry[]) : []).find((e) => isRecord(e) && e.name === name);
  if (!entry || !isRecord(entry[body]))
    throw new TenantKubeconfigError('NoContext', `the ${kind} of the current context is missing; ${WHAT_TO_DO}`);
  return entry[body];
}

function checkFields(
  section: Record<string, unknown>,
  where: string,
  forbidden: Record<string, string>,
  allowed: Set<string>,
): void {
  for (const [key, value] of Object.entries(section)) {
    if (value === undefined || value === null || value === '') continue;
    if (forbidden[key])
      throw new TenantKubeconfigError(
        'ForbiddenField',
        `${where}.${key} ${forbidden[key]}, which this controller never does; ${WHAT_TO_DO}`,
      );
    if (!allowed.has(key))
      throw new TenantKubeconfigError(
        'ForbiddenField',
        `${where} has ${fieldName(key)}, which this controller does not accept; ${WHAT_TO_DO}`,
      );
  }
}

function decodePem(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(value))
    throw new TenantKubeconfigError('BadCredentials', `${field} is not base64`);
  return Buffer.from(value, 'base64').toString('utf8');
}

function checkCertificates(pem: string, field: string): void {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (!blocks.length)
    throw new TenantKubeconfigError(
      field.startsWith('cluster') ? 'MissingCA' : 'BadCredentials',
      `${field} holds no PEM certificate`,
    );
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new TenantKubeconfigError('BadCredentials', `${field} holds a certificate that does not parse`);
    }
  }
}

function userAuth(user: Record<string, unknown>): TenantAuth {
  const hasCert = user['client-certificate-data'] !== undefined || user['client-key-data'] !== undefined;
  const token = user.token;
  if (hasCert && token)
    throw new TenantKubeconfigError('BadCredentials', 'user has both a client certificate and a token: keep one');
  if (token !== undefined) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(token)) {
      throw new TenantKubeconfigError(
        'BadCredentials',
        `user.token must be 1..${MAX_TOKEN_CHARS} printable characters without spaces`,
      );
    }
    return { kind: 'token', token };
  }
  if (!hasCert) throw new TenantKubeconfigError('NoCredentials', `user has no credentials; ${WHAT_TO_DO}`);
  if (!user['client-certificate-data'] || !user['client-key-data'])
    throw new TenantKubeconfigError('BadCredentials', 'user needs both client-certificate-data and client-key-data');
  const certPem = decodePem(user['client-certificate-data'], 'user.client-certificate-data');
  const keyPem = decodePem(user['client-key-data'], 'user.client-key-data');
  checkCertificates(certPem, 'user.client-certificate-data');
  let matches = false;
  try {
    matches = new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    throw new TenantKubeconfigError('BadCredentials', 'user.client-key-data is not a PEM private key');
  }
  if (!matches)
    throw new TenantKubeconfigError(
      'BadCredentials',
      'user.client-key-data does not belong to user.client-certificate-data',
    );
  return { kind: 'clientCertificate', certPem, keyPem };
}

/**
 * The CA and credentials of a tenant's kubeconfig text, or a TenantKubeconfigError that says
 * what was refused. `server` is never read: connect to the address the platform expects.
 */
export function parseTenantKubeconfig(text: string): TenantCredentials {
  if (Buffer.byteLength(text) > MAX_TENANT_KUBECONFIG_BYTES)
    throw new TenantKubeconfigError('Malformed', `the kubeconfig is larger than ${MAX_TENANT_KUBECONFIG_BYTES} bytes`);
  let doc: unknown;
  try {
    // Aliases only serve expansion attacks here; a real kubeconfig has none.
    doc = parse(text, { maxAliasCount: 0, uniqueKeys: true });
  } catch {
    throw new TenantKubeconfigError('Malformed', 'the kubeconfig is not valid YAML');
  }
  if (!isRecord(doc)) throw new TenantKubeconfigError('Malformed', 'the kubeconfig is not a YAML mapping');
  const context = named(doc.contexts, 'context', doc['current-context'], 'context');
  const cluster = named(doc.clusters, 'cluster', context.cluster, 'cluster');
  const user = named(doc.users, 'user', context.user, 'user');
  checkFields(cluster, 'cluster', FORBIDDEN_CLUSTER, ALLOWED_CLUSTER);
  checkFields(user, 'user', FORBIDDEN_USER, ALLOWED_USER);
  if (cluster['insecure-skip-tls-verify'] === true) {
    throw new TenantKubeconfigError(
      'MissingCA',
      `cluster.insecure-skip-tls-verify turns off server verification, which this controller never does; ${WHAT_TO_DO}`,
    );
  }
  if (cluster['certificate-authority-data'] === undefined)
    throw new TenantKubeconfigError('MissingCA', `cluster has no certificate-authority-data; ${WHAT_TO_DO}`);
  const caPem = decodePem(cluster['certificate-authority-data'], 'cluster.certificate-authority-data');
  checkCertificates(caPem, 'cluster.certificate-authority-data');
  return { caPem, auth: userAuth(user) };
}
