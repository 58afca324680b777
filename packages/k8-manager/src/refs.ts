// The API resources k8-manager reads and writes, and the owner reference it puts on what it creates.
import { KDC_API_VERSION, KDC_CLUSTER, type KubeObject } from '@kdc/shared';

/** The KdcCluster as the controlling owner of an object k8-manager creates for it. */
export function clusterOwner(cluster: KubeObject) {
  return {
    apiVersion: KDC_API_VERSION,
    kind: KDC_CLUSTER.kind,
    name: cluster.metadata!.name!,
    uid: cluster.metadata!.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}
