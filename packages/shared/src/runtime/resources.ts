// The one catalogue of API resources the product and its test platform read and write. Each entry
// carries the type of the object it returns, so an Informer, get or list over it is typed without a
// cast, and no package spells a group/version/plural of its own.
import type { KdcCluster } from '../api/kdccluster.ts';
import type { KmsKey } from '../api/kmskey.ts';
import type { TenantControlPlane } from '../api/tenantcontrolplane.ts';
import { KAMAJI_GROUP, KDC_GROUP, SECURITY_GROUP } from '../names.ts';
import type { KubeObject, ResourceRef, TypedRef } from './kube.ts';

/** A catalogued resource. Reads over it return plain KubeObjects unless the caller names a type. */
export type Resource = ResourceRef & { readonly kind: string };

/** A catalogued resource that knows its object type (`object` is a phantom: never set at runtime). */
export type TypedResource<T extends KubeObject> = Resource & TypedRef<T>;

function resource(group: string, version: string, plural: string, kind: string): Resource {
  return Object.freeze({ group, version, plural, kind });
}

function typed<T extends KubeObject>(group: string, version: string, plural: string, kind: string): TypedResource<T> {
  return resource(group, version, plural, kind);
}

export type KdcClusterObject = KdcCluster & KubeObject;
export type KmsKeyObject = KmsKey & KubeObject;
export type TenantControlPlaneObject = TenantControlPlane & KubeObject;

export const RESOURCES = {
  kdcCluster: typed<KdcClusterObject>(KDC_GROUP, 'v1alpha1', 'kdcclusters', 'KdcCluster'),
  kmsKey: typed<KmsKeyObject>(SECURITY_GROUP, 'v1alpha1', 'kmskeys', 'KMSKey'),
  tenantControlPlane: typed<TenantControlPlaneObject>(
    KAMAJI_GROUP,
    'v1alpha1',
    'tenantcontrolplanes',
    'TenantControlPlane',
  ),
  dataStore: resource(KAMAJI_GROUP, 'v1alpha1', 'datastores', 'DataStore'),
  namespace: resource('', 'v1', 'namespaces', 'Namespace'),
  secret: resource('', 'v1', 'secrets', 'Secret'),
  configMap: resource('', 'v1', 'configmaps', 'ConfigMap'),
  serviceAccount: resource('', 'v1', 'serviceaccounts', 'ServiceAccount'),
  service: resource('', 'v1', 'services', 'Service'),
  endpoints: resource('', 'v1', 'endpoints', 'Endpoints'),
  pod: resource('', 'v1', 'pods', 'Pod'),
  event: resource('', 'v1', 'events', 'Event'),
  deployment: resource('apps', 'v1', 'deployments', 'Deployment'),
  statefulSet: resource('apps', 'v1', 'statefulsets', 'StatefulSet'),
  job: resource('batch', 'v1', 'jobs', 'Job'),
  cronJob: resource('batch', 'v1', 'cronjobs', 'CronJob'),
  lease: resource('coordination.k8s.io', 'v1', 'leases', 'Lease'),
  role: resource('rbac.authorization.k8s.io', 'v1', 'roles', 'Role'),
  roleBinding: resource('rbac.authorization.k8s.io', 'v1', 'rolebindings', 'RoleBinding'),
  clusterRole: resource('rbac.authorization.k8s.io', 'v1', 'clusterroles', 'ClusterRole'),
  clusterRoleBinding: resource('rbac.authorization.k8s.io', 'v1', 'clusterrolebindings', 'ClusterRoleBinding'),
  customResourceDefinition: resource(
    'apiextensions.k8s.io',
    'v1',
    'customresourcedefinitions',
    'CustomResourceDefinition',
  ),
} as const;

/** `resource` narrowed to a namespace (all of it when `name` is absent) or to one object. */
export function at<R extends ResourceRef>(resource: R, namespace?: string, name?: string): R {
  return { ...resource, namespace, name };
}

/** `apiVersion` of a resource's objects, as written in a manifest. */
export const apiVersionOf = (resource: ResourceRef): string =>
  resource.group === '' ? resource.version : `${resource.group}/${resource.version}`;
