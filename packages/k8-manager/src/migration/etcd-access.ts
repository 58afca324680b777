import {
  BACKUP_JOB,
  decodeSecretData,
  type KubeClient,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import {
  classifyRow,
  emptyCounts,
  isEtcdReadError,
  openEtcdKvReader,
  resourcePrefix,
  scanCoverage,
  tenantEtcdPrefix,
  type CoverageCounts,
  type EtcdConnection,
  type EtcdKvReader,
} from '@kdc/shared/etcd';

import type { RowStore } from './reconcile.ts';

// How k8-manager reads a tenant's rows: from the cluster's Kamaji DataStore (platform-owned: its
// endpoint and, when it has it inline, its CA), with the per-TenantControlPlane client certificate
// Kamaji issues for that tenant's prefix only (`<tcp>-datastore-certs`), under the prefix Kamaji
// applied (status.storage.setup.schema). A scan that finds nothing at all under the prefix proves
// nothing (the wrong DataStore or prefix) and is an error, never "0 plaintext rows".

type DataStore = KubeObject & {
  spec?: {
    driver?: string;
    endpoints?: string[];
    tlsConfig?: { certificateAuthority?: { certificate?: { content?: string } } };
  };
};

export class CoverageUnavailableError extends Error {
  readonly kind = 'coverage-unavailable';
  constructor(message: string) {
    super(message);
    this.name = 'CoverageUnavailableError';
  }
}

export async function etcdConnectionFor(
  kube: KubeClient,
  namespace: string,
  tcp: TenantControlPlane,
): Promise<EtcdConnection> {
  const name = (tcp.status as { storage?: { dataStoreName?: string } } | undefined)?.storage?.dataStoreName;
  if (!name) throw new CoverageUnavailableError('the TenantControlPlane reports no DataStore yet');
  const ds = await kube.getOrNull<DataStore>(at(RESOURCES.dataStore, undefined, name));
  if (!ds) throw new CoverageUnavailableError(`DataStore ${name} cannot be read, so the stored rows cannot be counted`);
  if (ds.spec?.driver !== 'etcd' || !ds.spec.endpoints?.length)
    throw new CoverageUnavailableError(`DataStore ${name} is not an etcd DataStore with endpoints`);
  const secretName = BACKUP_JOB.datastoreCertsSecret(tcp.metadata.name);
  const certs = decodeSecretData(await kube.getOrNull(at(RESOURCES.secret, namespace, secretName)));
  if (!certs?.['server.crt'] || !certs['server.key'])
    throw new CoverageUnavailableError(
      `Secret ${secretName} with the control plane's DataStore client certificate does not exist yet`,
    );
  const inlineCa = ds.spec.tlsConfig?.certificateAuthority?.certificate?.content;
  const caPem = inlineCa ? Buffer.from(inlineCa, 'base64').toString('utf8') : certs['ca.crt'];
  return {
    endpoint: `https://${ds.spec.endpoints[0]}`,
    ...(caPem ? { caPem } : {}),
    certPem: certs['server.crt'],
    keyPem: certs['server.key'],
  };
}

/** The tenant's rows as the migration reads them, from the DataStore as above. */
export function dataStoreRows(kube: KubeClient): RowStore {
  const prefixOf = (tcp: TenantControlPlane) => {
    const prefix = tenantEtcdPrefix(tcp);
    if (!prefix) throw new CoverageUnavailableError("Kamaji has not set the control plane's etcd prefix yet");
    return prefix;
  };
  /** One short read of the tenant's DataStore on a reader of its own, closed afterwards. */
  const withReader = async <T>(
    input: { namespace: string; tcp: TenantControlPlane },
    read: (reader: EtcdKvReader) => Promise<T>,
  ): Promise<T> => {
    const reader = openEtcdKvReader(await etcdConnectionFor(kube, input.namespace, input.tcp), {
      callTimeoutMs: 10_000,
    });
    try {
      return await read(reader);
    } finally {
      reader.close();
    }
  };
  return {
    async scan(input) {
      const prefix = prefixOf(input.tcp);
      const connection = await etcdConnectionFor(kube, input.namespace, input.tcp);
      const scan = await scanCoverage({
        connection,
        prefix,
        resources: input.resources,
        currentKeyIds: input.currentKeyIds,
        signal: input.signal,
      });
      if (scan.prefixKeys === 0)
        throw new CoverageUnavailableError(
          `no row at all under ${prefix} in the DataStore: it is not where this control plane stores its data`,
        );
      // Rows under any other key_id, and rows that cannot be decoded, all still need a re-write.
      const counts = (c: CoverageCounts) => ({
        total: c.total,
        current: c.current,
        stale: c.stale + c.foreign + c.unreadable,
        plaintext: c.plaintext,
      });
      const byResource = Object.fromEntries(
        input.resources.map((r) => [r, counts(scan.byResource[r] ?? emptyCounts())]),
      );
      return { ...counts(scan), byResource, revision: scan.revision };
    },
    compactedBefore: (input) =>
      withReader(input, async (reader) => {
        try {
          await reader.count(prefixOf(input.tcp), input.revision - 1);
          return false;
        } catch (error) {
          if (isEtcdReadError(error) && error.kind === 'compacted') return true;
          throw error;
        }
      }),
    rowIs: (input) => {
      const key = `${resourcePrefix(prefixOf(input.tcp), input.resource)}${input.object.namespace}/${input.object.name}`;
      return withReader(input, async (reader) => {
        const { revision } = await reader.count(key);
        for await (const batch of reader.rows(key, revision)) {
          const row = batch.find((r) => r.key.toString('utf8') === key);
          if (row) return classifyRow(row.value, { current: new Set(input.currentKeyIds) }).kind === input.want;
        }
        return false;
      });
    },
  };
}
