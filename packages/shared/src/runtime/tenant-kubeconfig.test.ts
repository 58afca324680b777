import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseTenantKubeconfig, TenantKubeconfigError, type TenantKubeconfigErrorKind } from './tenant-kubeconfig.ts';

// Test material made with the openssl CLI (node:crypto cannot issue certificates).
const dir = mkdtempSync(join(tmpdir(), 'tenant-kc-'));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const b64 = (s: string) => Buffer.from(s).toString('base64');
let ca = '';
let cert = '';
let key = '';
let otherKey = '';
const marker = join(dir, 'exec-ran');

beforeAll(() => {
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=tenant-ca');
  openssl('req', ...ec, '-keyout', 'admin.key', '-out', 'admin.csr', '-subj', '/CN=admin');
  openssl(
    'x509',
    '-req',
    '-in',
    'admin.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'admin.crt',
    '-days',
    '1',
  );
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', 'other.key');
  [ca, cert, key, otherKey] = ['ca.crt', 'admin.crt', 'admin.key', 'other.key'].map((f) =>
    readFileSync(join(dir, f), 'utf8'),
  ) as [string, string, string, string];
  writeFileSync(join(dir, 'token'), 'secret-from-a-file');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A Kamaji-shaped admin kubeconfig with `cluster` and `user` fields replaced. */
function kubeconfig(
  input: {
    cluster?: Record<string, unknown>;
    user?: Record<string, unknown>;
    context?: Record<string, unknown>;
    current?: string;
  } = {},
): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'c',
        cluster: input.cluster ?? { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64(ca) },
      },
    ],
    users: [{ name: 'u', user: input.user ?? { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
    contexts: [{ name: 'ctx', context: input.context ?? { cluster: 'c', user: 'u' } }],
    'current-context': input.current ?? 'ctx',
  });
}

const refusal = (text: () => string): { kind: TenantKubeconfigErrorKind; message: string } => {
  try {
    parseTenantKubeconfig(text());
  } catch (error) {
    expect(error).toBeInstanceOf(TenantKubeconfigError);
    return { kind: (error as TenantKubeconfigError).kind, message: (error as Error).message };
  }
  throw new Error('accepted');
};

describe('parseTenantKubeconfig', () => {
  it('takes the inline CA and client certificate of a Kamaji admin kubeconfig', () => {
    const parsed = parseTenantKubeconfig(kubeconfig());
    expect(parsed.caPem).toBe(ca);
    expect(parsed.auth).toEqual({ kind: 'clientCertificate', certPem: cert, keyPem: key });
  });

  it('takes an inline token', () => {
    expect(parseTenantKubeconfig(kubeconfig({ user: { token: 'abc.def-ghi' } })).auth).toEqual({
      kind: 'token',
      token: 'abc.def-ghi',
    });
  });

  it('never reads the server: any address in the kubeconfig gives the same credentials', () => {
    const elsewhere = parseTenantKubeconfig(
      kubeconfig({ cluster: { server: 'https://169.254.169.254:80', 'certificate-authority-data': b64(ca) } }),
    );
    expect(elsewhere).toEqual(parseTenantKubeconfig(kubeconfig()));
    expect(JSON.stringify(elsewhere)).not.toContain('169.254');
  });

  const exec = {
    apiVersion: 'client.authentication.k8s.io/v1',
    command: 'sh',
    args: ['-c', `touch ${marker}`],
    interactiveMode: 'Never',
  };
  it.each<[string, () => string, TenantKubeconfigErrorKind, RegExp]>([
    ['exec plugin', () => kubeconfig({ user: { exec } }), 'ForbiddenField', /user\.exec runs a credential plugin/],
    [
      'exec beside a certificate',
      () => kubeconfig({ user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key), exec } }),
      'ForbiddenField',
      /user\.exec/,
    ],
    [
      'auth-provider command',
      () =>
        kubeconfig({
          user: {
            'auth-provider': { name: 'gcp', config: { 'cmd-path': '/bin/sh', 'cmd-args': `-c touch ${marker}` } },
          },
        }),
      'ForbiddenField',
      /user\.auth-provider uses an auth provider/,
    ],
    [
      'auth-provider token file',
      () => kubeconfig({ user: { 'auth-provider': { name: 'tokenFile', config: { tokenFile: join(dir, 'token') } } } }),
      'ForbiddenField',
      /user\.auth-provider/,
    ],
    [
      'tokenFile',
      () => kubeconfig({ user: { tokenFile: join(dir, 'token') } }),
      'ForbiddenField',
      /user\.tokenFile reads a token from a file/,
    ],
    [
      'token-file (client-node spelling)',
      () => kubeconfig({ user: { 'token-file': join(dir, 'token') } }),
      'ForbiddenField',
      /user\.token-file reads a token from a file/,
    ],
    [
      'client certificate file',
      () => kubeconfig({ user: { 'client-certificate': join(dir, 'admin.crt'), 'client-key-data': b64(key) } }),
      'ForbiddenField',
      /user\.client-certificate reads/,
    ],
    [
      'client key file',
      () => kubeconfig({ user: { 'client-certificate-data': b64(cert), 'client-key': join(dir, 'admin.key') } }),
      'ForbiddenField',
      /user\.client-key reads/,
    ],
    [
      'CA file',
      () => kubeconfig({ cluster: { server: 'https://x:1', 'certificate-authority': join(dir, 'ca.crt') } }),
      'ForbiddenField',
      /cluster\.certificate-authority reads the CA from a file/,
    ],
    [
      'proxy',
      () => kubeconfig({ cluster: { 'certificate-authority-data': b64(ca), 'proxy-url': 'http://127.0.0.1:3128' } }),
      'ForbiddenField',
      /proxy-url/,
    ],
    [
      'tls-server-name',
      () => kubeconfig({ cluster: { 'certificate-authority-data': b64(ca), 'tls-server-name': 'evil' } }),
      'ForbiddenField',
      /tls-server-name/,
    ],
    [
      'basic auth',
      () => kubeconfig({ user: { username: 'a', password: 'b' } }),
      'ForbiddenField',
      /basic authentication/,
    ],
    [
      'impersonation',
      () => kubeconfig({ user: { token: 't', as: 'system:admin' } }),
      'ForbiddenField',
      /user\.as impersonates/,
    ],
    [
      'unknown user field',
      () => kubeconfig({ user: { token: 't', shinyNewThing: 1 } }),
      'ForbiddenField',
      /user has shinyNewThing/,
    ],
    [
      'unknown field with an odd name is not echoed',
      () => kubeconfig({ user: { token: 't', 'x y<script>': 1 } }),
      'ForbiddenField',
      /user has a field,/,
    ],
    [
      'missing CA',
      () => kubeconfig({ cluster: { server: 'https://x:1' } }),
      'MissingCA',
      /no certificate-authority-data/,
    ],
    [
      'insecure-skip-tls-verify',
      () => kubeconfig({ cluster: { 'certificate-authority-data': b64(ca), 'insecure-skip-tls-verify': true } }),
      'MissingCA',
      /insecure-skip-tls-verify/,
    ],
    [
      'CA that is no certificate',
      () => kubeconfig({ cluster: { 'certificate-authority-data': b64('hello') } }),
      'MissingCA',
      /no PEM certificate/,
    ],
    [
      'CA not base64',
      () => kubeconfig({ cluster: { 'certificate-authority-data': '!!!' } }),
      'BadCredentials',
      /not base64/,
    ],
    ['no credentials', () => kubeconfig({ user: {} }), 'NoCredentials', /no credentials/],
    [
      'certificate without key',
      () => kubeconfig({ user: { 'client-certificate-data': b64(cert) } }),
      'BadCredentials',
      /needs both client-certificate-data and client-key-data/,
    ],
    [
      'key of another certificate',
      () => kubeconfig({ user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(otherKey) } }),
      'BadCredentials',
      /does not belong/,
    ],
    [
      'certificate and token',
      () => kubeconfig({ user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key), token: 't' } }),
      'BadCredentials',
      /keep one/,
    ],
    [
      'token with a newline (header injection)',
      () => kubeconfig({ user: { token: 'a\r\nX-Evil: 1' } }),
      'BadCredentials',
      /printable/,
    ],
    ['no current context', () => kubeconfig({ current: 'nope' }), 'NoContext', /context/],
    [
      'context naming a missing user',
      () => kubeconfig({ context: { cluster: 'c', user: 'ghost' } }),
      'NoContext',
      /user of the current context is missing/,
    ],
    ['not YAML', () => '{{{', 'Malformed', /not valid YAML/],
    ['a list', () => '- a\n- b\n', 'Malformed', /not a YAML mapping/],
    ['alias expansion', () => `a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n`, 'Malformed', /not valid YAML/],
    ['too large', () => `x: "${'a'.repeat(300 * 1024)}"`, 'Malformed', /larger than/],
  ])('refuses %s', (_name, text, kind, message) => {
    const r = refusal(text);
    expect(r.kind).toBe(kind);
    expect(r.message).toMatch(message);
    expect(existsSync(marker)).toBe(false);
  });

  it('says what to do in every refusal about credentials', () => {
    expect(refusal(() => kubeconfig({ user: { exec } })).message).toContain(
      'certificate-authority-data and either client-certificate-data + client-key-data or token',
    );
  });
});
