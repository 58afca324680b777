// Which KdcClusters an event of a secondary object concerns (the controller's watchSecondary maps).
import {
  LABELS,
  parseKdcClusterSpec,
  resolveKeyRefs,
  splitKey,
  type Cache,
  type InformerEvent,
  type KdcClusterObject,
  type KubeObject,
} from '@kdc/shared';
import { clusterOfTcp, dataStoreNeighbours, type TcpsByDataStore } from '../tenant/datastore.ts';

/** The cluster an object k8-manager labelled belongs to. */
export function clusterOfLabel(object: KubeObject): string[] {
  const ns = object.metadata?.namespace;
  const owner = object.metadata?.labels?.[LABELS.kdcCluster];
  return ns && owner ? [`${ns}/${owner}`] : [];
}

/** A KMSKey change may matter to any cluster of its namespace that names it (explicit keyRef). */
export function clustersNamingKey(clusters: Cache<KdcClusterObject>, key: KubeObject): string[] {
  const ns = key.metadata?.namespace;
  const users = clusters.list(ns).filter((c) => {
    const spec = parseKdcClusterSpec(c.spec);
    return spec.success && Object.values(resolveKeyRefs(c.metadata.name, spec.data)).includes(key.metadata!.name!);
  });
  return [...new Set([...clusterOfLabel(key), ...users.map((c) => `${ns}/${c.metadata.name}`)])];
}

/** A control plane's own cluster (none for a TCP no cluster made or names). */
export function ownCluster(tcp: KubeObject): string[] {
  const own = clusterOfTcp(tcp);
  return own ? [own] : [];
}

/** A control plane's own cluster, and every cluster on a DataStore it arrived on or left (dataStoreNeighbours). */
export function controlPlaneEvents(tcpsOnDataStore: TcpsByDataStore) {
  const neighbours = dataStoreNeighbours(tcpsOnDataStore);
  return (tcp: KubeObject, event: InformerEvent): string[] => [
    ...new Set([...ownCluster(tcp), ...neighbours(tcp, event)]),
  ];
}

/**
 * Only the clusters this instance reconciles: a sharded k8-manager watches every KMSKey and
 * TenantControlPlane, and another shard's cluster would cost a turn of the queue to find nothing.
 */
export function ownedBy(clusters: Cache<KdcClusterObject>) {
  return (keys: string[]): string[] =>
    keys.filter((key) => {
      const { namespace, name } = splitKey(key);
      return clusters.get(name, namespace) !== undefined;
    });
}
