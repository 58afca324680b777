// The API resources k8-manager reads and writes, and the owner reference it puts on what it creates.
import {
  KAMAJI_GROUP,
  KDC_API_VERSION,
  KDC_CLUSTER,
  KDC_GROUP,
  SECURITY_GROUP,
  TENANT_CONTROL_PLANE,
  type KubeObject,
  type ResourceRef,
} from '@kdc/shared';

export const KDCCLUSTER_REF = { group: KDC_GROUP, version: 'v1alpha1', plural: KDC_CLUSTER.plural };
export const KMSKEY_REF = { group: SECURITY_GROUP, version: 'v1alpha1', plural: 'kmskeys' };
export const TCP_REF = { group: KAMAJI_GROUP, version: 'v1alpha1', plural: TENANT_CONTROL_PLANE.plural };
export const CRONJOB_REF = { group: 'batch', version: 'v1', plural: 'cronjobs' };
export const JOB_REF = { group: 'batch', version: 'v1', plural: 'jobs' };
export const STATEFULSET_REF = { group: 'apps', version: 'v1', plural: 'statefulsets' };
export const DATASTORE_REF = (name: string): ResourceRef => ({
  group: KAMAJI_GROUP,
  version: 'v1alpha1',
  plural: 'datastores',
  name,
});

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
