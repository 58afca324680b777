// Kamaji's DataStore handling for etcd: where a TCP's apiserver keeps its data (the platform's
// etcd, or a DataStore over TLS with a client certificate signed by the DataStore's CA), and the
// cleanup of a deleted TCP's keys.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { at, RESOURCES, type KubeClient, type KubeObject } from '@kdc/shared';
import { issueCert } from '../pki.ts';
import { tcpSecret } from './pki.ts';
import { FIELD_MANAGER, datastoreCertsSecret, type EtcdTarget, type TenantControlPlane } from './tcp.ts';

type DataStoreContent = { content?: string; secretReference?: { name?: string; namespace?: string; keyPath: string } };
interface DataStore extends KubeObject {
  spec: {
    driver: string;
    endpoints: string[];
    tlsConfig?: {
      certificateAuthority?: { certificate?: DataStoreContent; privateKey?: DataStoreContent };
      clientCertificate?: { certificate?: DataStoreContent; privateKey?: DataStoreContent };
    };
  };
}

/**
 * The TCP's etcd: the platform's (`platformEtcd`) unless it names a DataStore, whose endpoints
 * it then reaches over TLS with the client certificate in `<tcp>-datastore-certs` (made once,
 * under `workDir` only while it is signed).
 */
export async function etcdTarget(
  kube: KubeClient,
  tcp: TenantControlPlane,
  platformEtcd: string,
  workDir: string,
): Promise<EtcdTarget> {
  if (!tcp.spec.dataStore) return { servers: platformEtcd };
  const ds = await kube.getOrNull<DataStore>(at(RESOURCES.dataStore, undefined, tcp.spec.dataStore));
  if (!ds) throw new Error(`DataStore ${tcp.spec.dataStore} not found`);
  if (ds.spec.driver !== 'etcd')
    throw new Error(`DataStore ${tcp.spec.dataStore}: driver ${ds.spec.driver} is not supported by the local runner`);
  const { namespace, name } = tcp.metadata;
  const secretName = datastoreCertsSecret(name);
  const existing = await kube.getOrNull(at(RESOURCES.secret, namespace, secretName));
  if (!existing) {
    const ca = ds.spec.tlsConfig?.certificateAuthority;
    const caCert = await contentOf(kube, ca?.certificate);
    const caKey = await contentOf(kube, ca?.privateKey);
    const dir = join(workDir, `${namespace}_${name}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'ca.crt'), caCert);
    writeFileSync(join(dir, 'ca.key'), caKey, { mode: 0o600 });
    const client = issueCert(
      { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key'), certPem: caCert, keyPem: caKey },
      dir,
      { name: 'client', commonName: `${namespace}_${name}`, usage: 'client' },
    );
    await kube.apply(
      at(RESOURCES.secret, namespace, secretName),
      tcpSecret(tcp, secretName, { 'ca.crt': caCert, 'server.crt': client.certPem, 'server.key': client.keyPem }),
      FIELD_MANAGER,
    );
    rmSync(dir, { recursive: true, force: true });
  }
  return { servers: ds.spec.endpoints.map((e) => `https://${e}`).join(','), certsSecret: secretName };
}

async function contentOf(kube: KubeClient, ref: DataStoreContent | undefined): Promise<string> {
  if (ref?.content) return Buffer.from(ref.content, 'base64').toString();
  const secretRef = ref?.secretReference;
  if (!secretRef?.name || !secretRef.namespace)
    throw new Error(
      'DataStore tlsConfig: a certificate or key has neither content nor a secretReference with name and namespace',
    );
  const secret = await kube.get<KubeObject & { data?: Record<string, string> }>(
    at(RESOURCES.secret, secretRef.namespace, secretRef.name),
  );
  const value = secret.data?.[secretRef.keyPath];
  if (!value)
    throw new Error(
      `DataStore tlsConfig: Secret ${secretRef.namespace}/${secretRef.name} has no key ${secretRef.keyPath}`,
    );
  return Buffer.from(value, 'base64').toString();
}

/** Kamaji's datastore cleanup for an etcd DataStore: every key under the tenant's prefix. */
export async function deleteEtcdPrefix(endpoint: string, prefix: string): Promise<void> {
  const bytes = Buffer.from(prefix);
  const end = Buffer.from(bytes);
  end[end.length - 1]! += 1;
  const response = await fetch(`${endpoint}/v3/kv/deleterange`, {
    method: 'POST',
    body: JSON.stringify({ key: bytes.toString('base64'), range_end: end.toString('base64') }),
  });
  if (!response.ok) throw new Error(`etcd deleterange ${prefix}: HTTP ${response.status} ${await response.text()}`);
}
