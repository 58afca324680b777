// An etcd like a Kamaji DataStore for tests of the coverage scanner: client certificates required
// (--client-cert-auth), server certificate for serverAuth only, and KMS v2 rows made by hand.
import { mkdirSync } from 'node:fs';
import { KMS_STORED_PREFIX } from '@kdc/shared';
import { encodeEncryptedObject, type EtcdConnection } from '@kdc/shared/etcd';
import { startEtcd, type EtcdServer } from './etcd.ts';
import { etcdWriter, type EtcdWriter } from './etcd-write.ts';
import { createCA, issueCert, type IssuedCert } from './pki.ts';
import type { PlatformState } from './platform.ts';

export interface TlsEtcd {
  etcd: EtcdServer;
  ca: IssuedCert;
  client: IssuedCert;
  connection: EtcdConnection;
  writer: EtcdWriter;
  stop(): Promise<void>;
}

export async function startTlsEtcd(p: PlatformState, dir: string, name: string): Promise<TlsEtcd> {
  mkdirSync(dir, { recursive: true });
  const ca = createCA(dir, 'datastore');
  const server = issueCert(ca, dir, { name: 'etcd-server', commonName: 'etcd', ips: ['127.0.0.1'], usage: 'server' });
  const client = issueCert(ca, dir, { name: 'etcd-client', commonName: 'kdc-scanner', usage: 'client' });
  const etcd = await startEtcd({
    binary: p.binaries.etcd,
    dir,
    logDir: p.logDir,
    name,
    tls: {
      certFile: server.certFile,
      keyFile: server.keyFile,
      caFile: ca.certFile,
      clientCertPem: client.certPem,
      clientKeyPem: client.keyPem,
      caPem: ca.certPem,
    },
  });
  const connection = { endpoint: etcd.endpoint, caPem: ca.certPem, certPem: client.certPem, keyPem: client.keyPem };
  const writer = etcdWriter(connection);
  return { etcd, ca, client, connection, writer, stop: async () => (writer.close(), await etcd.stop()) };
}

/** A key_id of our form: `kdc2` (or the earlier `kdc1`) `.v<N>.` + 32 copies of `c`. */
export const keyIdOf = (form: 'kdc1' | 'kdc2', version: number, c: string) => `${form}.v${version}.${c.repeat(32)}`;

/** The bytes the apiserver stores through a KMS v2 provider (ours unless named), with made-up ciphertext. */
export function kmsRow(keyID: string, options: { provider?: string; pad?: number } = {}): Buffer {
  const prefix = options.provider ? `k8s:enc:kms:v2:${options.provider}:` : KMS_STORED_PREFIX;
  const object = encodeEncryptedObject({
    encryptedData: Buffer.alloc(48 + (options.pad ?? 0), 0x5a),
    keyID,
    encryptedDEKSource: Buffer.alloc(60, 0x11),
    encryptedDEKSourceType: 1,
  });
  return Buffer.concat([Buffer.from(prefix), object]);
}

/** A plaintext Secret as the apiserver stores it (protobuf, `k8s\0` magic). */
export const plaintextRow = (pad = 0) =>
  Buffer.concat([Buffer.from('k8s\u0000\n\u000cv1\u0012\u0006Secret\u001a\u0004data'), Buffer.alloc(pad, 0x2e)]);
