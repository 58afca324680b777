import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CORE, type KubeClient, type KubeObject, RESOURCES, at } from '@kdc/shared';
import { decodeEncryptedObject } from '@kdc/shared/etcd';

// What the data-lifecycle tests judge by: a checksum ledger of a tenant's objects read through
// its apiserver (nothing lost, nothing changed), and its rows read raw from its DataStore with
// etcdctl, independently of the controller's own scanner.

const exec = promisify(execFile);

type DataStore = KubeObject & {
  spec: {
    tlsConfig: {
      certificateAuthority: { certificate: { content: string } };
      clientCertificate: { certificate: { content: string }; privateKey: { content: string } };
    };
  };
};
type Listed = KubeObject & { data?: Record<string, string> };

export interface DataStoreAccess {
  /** etcdctl as a platform operator runs it against the DataStore, with the DataStore's own client certificate. */
  etcdctl: (...args: string[]) => Promise<string>;
  /** The same access as files, for the CLI's --etcd-* flags. */
  endpoint: string;
  ca: string;
  cert: string;
  key: string;
}

export async function dataStoreAccess(input: {
  kube: KubeClient;
  etcdctl: string;
  dataStore: string;
  port: number;
  dir: string;
}): Promise<DataStoreAccess> {
  const ds = await input.kube.get<DataStore>(at(RESOURCES.dataStore, undefined, input.dataStore));
  mkdirSync(input.dir, { recursive: true });
  const file = (name: string, b64: string) => {
    const path = join(input.dir, name);
    writeFileSync(path, Buffer.from(b64, 'base64'), { mode: 0o600 });
    return path;
  };
  const tls = ds.spec.tlsConfig;
  const endpoint = `https://127.0.0.1:${input.port}`;
  const ca = file('ca.pem', tls.certificateAuthority.certificate.content);
  const cert = file('client.pem', tls.clientCertificate.certificate.content);
  const key = file('client-key.pem', tls.clientCertificate.privateKey.content);
  const flags = [`--endpoints=${endpoint}`, `--cacert=${ca}`, `--cert=${cert}`, `--key=${key}`];
  return {
    etcdctl: async (...args) => (await exec(input.etcdctl, [...flags, ...args], { maxBuffer: 512 * 2 ** 20 })).stdout,
    endpoint,
    ca,
    cert,
    key,
  };
}

export interface RawRows {
  total: number;
  plaintext: number;
  /** KMS v2 rows per key_id. */
  byKeyId: Map<string, number>;
  /** KMS v2 rows per provider name (kube-dc-kms-plugin, kube-dc-kms-plugin-configmaps). */
  providers: Map<string, number>;
}

const KMS_V2 = Buffer.from('k8s:enc:kms:v2:');

/** Every row of `resource` under the tenant's prefix, read raw: plaintext, or KMS v2 with its key_id. */
export async function rawRows(
  etcdctl: (...args: string[]) => Promise<string>,
  tenantPrefix: string,
  resource: string,
): Promise<RawRows> {
  const answer = JSON.parse(await etcdctl('get', '--prefix', `${tenantPrefix}${resource}/`, '-w', 'json')) as {
    kvs?: { value: string }[];
  };
  const byKeyId = new Map<string, number>();
  const providers = new Map<string, number>();
  let plaintext = 0;
  for (const kv of answer.kvs ?? []) {
    const value = Buffer.from(kv.value, 'base64');
    if (!value.subarray(0, KMS_V2.length).equals(KMS_V2)) {
      if (value.subarray(0, 8).toString('latin1') === 'k8s:enc:')
        throw new Error(`a ${resource} row is encrypted by a provider that is not KMS v2`);
      plaintext++;
      continue;
    }
    // k8s:enc:kms:v2:<provider name>:<EncryptedObject>
    const name = value.indexOf(':', KMS_V2.length);
    const provider = value.subarray(KMS_V2.length, name).toString('latin1');
    providers.set(provider, (providers.get(provider) ?? 0) + 1);
    const keyId = decodeEncryptedObject(value.subarray(name + 1)).keyID;
    byKeyId.set(keyId, (byKeyId.get(keyId) ?? 0) + 1);
  }
  return { total: answer.kvs?.length ?? 0, plaintext, byKeyId, providers };
}

/** The tenant's etcd prefix as Kamaji applied it (`/<schema>/`). */
export async function tenantPrefix(kube: KubeClient, namespace: string, tcp: string): Promise<string> {
  const object = await kube.get<KubeObject & { status?: { storage?: { setup?: { schema?: string } } } }>({
    ...RESOURCES.tenantControlPlane,
    namespace,
    name: tcp,
  });
  return `/${object.status!.storage!.setup!.schema}/`;
}

/** sha256 of every object's data of `resource` (secrets, configmaps), by namespace/name, read through the tenant apiserver. */
export async function readLedger(
  tenant: KubeClient,
  resource: 'secrets' | 'configmaps',
  filter: (name: string) => boolean = () => true,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await tenant.list<Listed>(CORE(resource), { limit: 500, ...(token ? { continue: token } : {}) });
    for (const o of page.items) {
      if (filter(o.metadata!.name!))
        out.set(
          `${o.metadata!.namespace}/${o.metadata!.name}`,
          createHash('sha256')
            .update(JSON.stringify(o.data ?? {}))
            .digest('hex'),
        );
    }
    token = page.metadata.continue || undefined;
  } while (token);
  return out;
}
