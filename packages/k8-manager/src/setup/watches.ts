// Which KdcClusters an event of a secondary object concerns (the controller's watchSecondary maps).
import {
  LABELS,
  parseKdcClusterSpec,
  resolveKeyRefs,
  type Cache,
  type Informer,
  type KdcClusterObject,
  type KubeObject,
  type TenantControlPlaneObject,
} from '@kdc/shared';
import { clusterOfTcp, clustersOnDataStore } from '../tenant/datastore.ts';

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

/** A control plane arriving on (or leaving) a DataStore changes the backups of every cluster on it. */
export function clustersOfControlPlane(tcps: Informer<TenantControlPlaneObject>, tcp: KubeObject): string[] {
  const own = clusterOfTcp(tcp);
  return [...new Set([...(own ? [own] : []), ...clustersOnDataStore(tcps, tcp)])];
}
