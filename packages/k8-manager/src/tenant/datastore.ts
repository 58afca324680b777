// The cluster's Kamaji DataStore as backup and restore need it: which one the TCP reports, the
// object, and which other control planes live on it (a snapshot or a restore of a shared etcd
// would touch their data too).
import {
  LABELS,
  type Cache,
  type Informer,
  type InformerEvent,
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

/** Every cluster whose control plane reports DataStore `name`. */
function clustersOn(tcps: Cache<TenantControlPlaneObject>, name: string): string[] {
  return tcps
    .list()
    .filter((t) => storageOf(t) === name)
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
export function dataStoreNeighbours(tcps: Cache<TenantControlPlaneObject>) {
  const seenOn = new Map<string, string>();
  return (tcp: KubeObject, event: InformerEvent): string[] => {
    const key = `${tcp.metadata?.namespace}/${tcp.metadata?.name}`;
    const before = seenOn.get(key);
    const now = event === 'delete' ? undefined : storageOf(tcp);
    if (now) seenOn.set(key, now);
    else seenOn.delete(key);
    if (before === now) return [];
    return [...new Set([before, now].flatMap((name) => (name ? clustersOn(tcps, name) : [])))];
  };
}
