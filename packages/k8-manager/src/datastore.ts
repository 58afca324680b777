// The cluster's Kamaji DataStore as backup and restore need it: which one the TCP reports, the
// object, and which other control planes live on it (a snapshot or a restore of a shared etcd
// would touch their data too).
import type { Informer, KubeClient, KubeObject, TenantControlPlane } from '@kdc/shared';
import { DATASTORE_REF } from './refs.ts';

export type DataStore = KubeObject & { spec?: { driver?: string; endpoints?: string[] } };

export interface DataStoreFacts {
  /** TCP status.storage.dataStoreName. */
  name?: string;
  /** null: not found; undefined: not looked up (no name). */
  object?: DataStore | null;
  /** Other TenantControlPlanes (namespace/name) on the same DataStore, sorted. */
  neighbours: string[];
}

const storageOf = (tcp: KubeObject) => (tcp.status as { storage?: { dataStoreName?: string } } | undefined)?.storage?.dataStoreName;

export async function dataStoreFacts(kube: KubeClient, tcps: Informer<KubeObject>, tcp: TenantControlPlane): Promise<DataStoreFacts> {
  const name = storageOf(tcp as unknown as KubeObject);
  if (!name) return { neighbours: [] };
  const object = await kube.getOrNull<DataStore>(DATASTORE_REF(name));
  const self = `${tcp.metadata.namespace}/${tcp.metadata.name}`;
  const neighbours = tcps.list()
    .filter((t) => storageOf(t) === name)
    .map((t) => `${t.metadata!.namespace}/${t.metadata!.name}`)
    .filter((key) => key !== self)
    .sort();
  return { name, object, neighbours };
}
