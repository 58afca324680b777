import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcdSettings } from './etcd.ts';

describe('etcdSettings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kdc-etcd-flags-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const ca = file('ca.pem', 'CA PEM');
  const cert = file('cert.pem', 'CERT PEM');
  const key = file('key.pem', 'KEY PEM');

  it.each([
    [{}, {}, null],
    [{ 'etcd-endpoint': 'http://127.0.0.1:2379/' }, {}, { endpoint: 'http://127.0.0.1:2379' }],
    [{}, { ETCD_ENDPOINT: 'http://e:2379' }, { endpoint: 'http://e:2379' }],
    [
      { 'etcd-endpoint': 'https://e:2379', 'etcd-ca-file': ca, 'etcd-cert-file': cert, 'etcd-key-file': key },
      {},
      { endpoint: 'https://e:2379', caPem: 'CA PEM', certPem: 'CERT PEM', keyPem: 'KEY PEM' },
    ],
    [{}, { ETCD_ENDPOINT: 'https://e:2379', ETCD_CA_FILE: ca }, { endpoint: 'https://e:2379', caPem: 'CA PEM' }],
  ])('%j %j', (flags, env, expected) => expect(etcdSettings(flags, env)).toEqual(expected));

  it.each([
    [{ 'etcd-ca-file': '/x' }, /need --etcd-endpoint/],
    [{ 'etcd-endpoint': 'e:2379' }, /must be http|not a URL/],
    [{ 'etcd-endpoint': 'ftp://e' }, /must be http/],
    [{ 'etcd-endpoint': 'https://e:2379/v3/kv/range' }, /without a path/],
    [{ 'etcd-endpoint': 'https://e', 'etcd-cert-file': '/c' }, /go together/],
    [{ 'etcd-endpoint': 'http://e:2379', 'etcd-ca-file': '/c' }, /is http:\/\/ but TLS files were given/],
    [{ 'etcd-endpoint': 'https://e', 'etcd-ca-file': '/does/not/exist' }, /cannot read --etcd-ca-file/],
  ])('refuses %j', (flags, message) => expect(() => etcdSettings(flags, {})).toThrow(message));
});
