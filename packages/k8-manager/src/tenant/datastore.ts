// The cluster's Kamaji DataStore as backup and restore need it: which one the TCP reports, the
// object, and which other control planes live on it (a snapshot or a restore of a shared etcd
// would touch their data too).
import {
  LABELS,
  type Informer,
  type KubeClient,
  type KubeObject,
  type TenantControlPlane,
  RESOURCES,
  at,
  type TenantControlPlaneObject,
} from '@kdc/shared';

export type DataStore = KubeObject & { spec?: { driver?: string; endpoints?: string[] } };

export interface DataStoreFacts {
  /** TCP status.storage.dataStoreName. */
  name?: string;
  /** null: not found; undefined: not looked up (no name). */
  object?: DataStore | null;
  /** Other TenantControlPlanes (namespace/name) on the same DataStore, sorted. */
  neighbours: string[];
}

const storageOf = (tcp: KubeObject) =>
  (tcp.status as { storage?: { dataStoreName?: string } } | undefined)?.storage?.dataStoreName;

export async function dataStoreFacts(
  kube: KubeClient,
  tcps: Informer<TenantControlPlaneObject>,
  tcp: TenantControlPlane,
): Promise<DataStoreFacts> {
  const name = storageOf(tcp);
  if (!name) return { neighbours: [] };
  const object = await kube.getOrNull<DataStore>(at(RESOURCES.dataStore, undefined, name));
  const self = `${tcp.metadata.namespace}/${tcp.metadata.name}`;
  const neighbours = tcps
    .list()
    .filter((t) => storageOf(t) === name)
    .map((t) => `${t.metadata.namespace}/${t.metadata.name}`)
    .filter((key) => key !== self)
    .sort();
  return { name, object, neighbours };
}

/** The KdcCluster (`<namespace>/<name>`) a TenantControlPlane belongs to: its label, else `<name>-cp`. */
export function clusterOfTcp(tcp: KubeObject): string | undefined {
  const ns = tcp.metadata?.namespace;
  const name = tcp.metadata?.name ?? '';
  const owner = tcp.metadata?.labels?.[LABELS.kdcCluster];
  if (!ns) return undefined;
  return owner ? `${ns}/${owner}` : name.endsWith('-cp') ? `${ns}/${name.slice(0, -3)}` : undefined;
}

/**
 * Every cluster whose control plane reports the same DataStore as `tcp`: when a control plane
 * arrives on a DataStore or leaves it, the backups of the others must change at once (a shared
 * etcd is never snapshotted), not at their next resync.
 */
export function clustersOnDataStore(tcps: Informer<TenantControlPlaneObject>, tcp: KubeObject): string[] {
  const name = storageOf(tcp);
  if (!name) return [];
  return [
    ...new Set(
      tcps
        .list()
        .filter((t) => storageOf(t) === name)
        .map(clusterOfTcp)
        .filter((k): k is string => k !== undefined),
    ),
  ];
}
