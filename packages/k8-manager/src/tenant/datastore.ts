// The cluster's Kamaji DataStore as backup and restore need it: which one the TCP reports, the
// object, and which other control planes live on it (a snapshot or a restore of a shared etcd
// would touch their data too).
import {
  identityWithLabels,
  LABELS,
  type InformerEvent,
  type KubeClient,
  type KubeObject,
  type ObjectIndex,
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

/** The DataStore a control plane reports (TCP status.storage.dataStoreName): what the TCP informer is indexed by. */
export const storageOf = (tcp: KubeObject) =>
  (tcp.status as { storage?: { dataStoreName?: string } } | undefined)?.storage?.dataStoreName;

/** What k8-manager keeps of every TenantControlPlane of the platform: where it lives and whose it is. */
export type TcpPlacement = KubeObject & {
  metadata: NonNullable<KubeObject['metadata']>;
  status?: { storage?: { dataStoreName?: string } };
};

/**
 * The placement of a control plane (the transform of the platform-wide TCP informer): name,
 * namespace, resourceVersion, the cluster label and the DataStore. Who shares a DataStore crosses
 * shards, so a sharded k8-manager sees every control plane, but keeps a few hundred bytes of each
 * instead of the whole object (a TCP with Kamaji's status runs to kilobytes).
 */
export function tcpPlacement(tcp: TenantControlPlaneObject): TcpPlacement {
  const dataStoreName = storageOf(tcp);
  return {
    metadata: identityWithLabels(tcp, [LABELS.kdcCluster]),
    ...(dataStoreName ? { status: { storage: { dataStoreName } } } : {}),
  };
}

/** The placement informer's index by DataStore (`placements.index(storageOf)`). */
export type TcpsByDataStore = Pick<ObjectIndex<TcpPlacement>, 'get'>;

export async function dataStoreFacts(
  kube: KubeClient,
  onDataStore: TcpsByDataStore,
  tcp: TenantControlPlane,
): Promise<DataStoreFacts> {
  const name = storageOf(tcp);
  if (!name) return { neighbours: [] };
  const object = await kube.getOrNull<DataStore>(at(RESOURCES.dataStore, undefined, name));
  const self = `${tcp.metadata.namespace}/${tcp.metadata.name}`;
  const neighbours = onDataStore
    .get(name)
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

/** Every cluster whose control plane reports DataStore `name`. */
function clustersOn(onDataStore: TcpsByDataStore, name: string): string[] {
  return onDataStore
    .get(name)
    .map(clusterOfTcp)
    .filter((k): k is string => k !== undefined);
}

/**
 * The clusters to tell of a TenantControlPlane event because of its DataStore: when a control
 * plane arrives on a DataStore or leaves it, the backups of the others there must change at once
 * (a shared etcd is never snapshotted), not at their next resync. Only a change of membership
 * tells them: Kamaji writes a control plane's status often, and telling every neighbour of every
 * write made each one a reconcile of every cluster on a shared DataStore (thousands on Kamaji's
 * default one). Remembers where each control plane was last seen, so one instance per watch.
 */
export function dataStoreNeighbours(onDataStore: TcpsByDataStore) {
  const seenOn = new Map<string, string>();
  return (tcp: KubeObject, event: InformerEvent): string[] => {
    const key = `${tcp.metadata?.namespace}/${tcp.metadata?.name}`;
    const before = seenOn.get(key);
    const now = event === 'delete' ? undefined : storageOf(tcp);
    if (now) seenOn.set(key, now);
    else seenOn.delete(key);
    if (before === now) return [];
    return [...new Set([before, now].flatMap((name) => (name ? clustersOn(onDataStore, name) : [])))];
  };
}
