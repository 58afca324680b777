import { isDeepStrictEqual } from 'node:util';
import {
  KDC_CLUSTER_CONDITIONS,
  isConflict,
  RESOURCES,
  stripUndefined,
  updateStatusIfChanged,
  type KdcClusterStatus,
  type KubeClient,
  type KubeObject,
} from '@kdc/shared';

type Cluster = KubeObject & { status?: KdcClusterStatus };

/**
 * The status write, against the copy this reconcile read. The encryption-reconciler writes its
 * KMSPreflight condition on the same object: when only that conflicts, ours is written once over
 * the newest copy keeping its condition, so a migration step's checkpoint is not thrown away
 * with the conflict (the page would be re-written). A changed spec, or a checkpoint another
 * reconcile moved meanwhile, is planned again instead.
 */
export async function writeClusterStatus(
  kube: KubeClient,
  object: Cluster,
  status: KdcClusterStatus,
): Promise<boolean> {
  const ref = { ...RESOURCES.kdcCluster, namespace: object.metadata!.namespace!, name: object.metadata!.name! };
  try {
    return await updateStatusIfChanged(kube, ref, object, status);
  } catch (error) {
    if (!isConflict(error)) throw error;
    const fresh = await kube.get<Cluster>(ref);
    // Only a foreign write is written over: if our own fields moved, this reconcile planned from
    // a stale copy (another reconcile's write not seen yet) and its step is thrown away.
    if (
      fresh.metadata?.generation !== object.metadata?.generation ||
      !isDeepStrictEqual(stripUndefined(fresh.status?.encryption), stripUndefined(object.status?.encryption))
    )
      throw error;
    const theirs = new Map(
      (fresh.status?.conditions ?? [])
        .filter((c) => c.type === KDC_CLUSTER_CONDITIONS.kmsPreflight)
        .map((c) => [c.type, c]),
    );
    const conditions = (status.conditions ?? []).map((c) => theirs.get(c.type) ?? c);
    for (const c of theirs.values()) if (!conditions.some((x) => x.type === c.type)) conditions.push(c);
    return updateStatusIfChanged(kube, ref, fresh, { ...status, conditions });
  }
}
