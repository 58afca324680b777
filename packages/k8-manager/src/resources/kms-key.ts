import {
  KMSKEY_API_VERSION,
  KMS_KEY,
  LABELS,
  MANAGED_BY_KDCCLUSTER,
  clusterNames,
  type KdcClusterSpec,
  type KmsKeySpecInput,
} from '@kdc/shared';

// The auto-created etcd KMSKey `<cluster>-etcd` (SPEC 3.2, 3.3). Tied to its cluster by labels,
// never by an ownerReference: garbage collection must not delete a key retained backups need.

export function desiredAutoKeySpec(spec: KdcClusterSpec): KmsKeySpecInput {
  const rotation = spec.encryption?.etcd.kekRotation;
  return {
    purpose: 'etcd',
    algorithm: 'aes256-gcm96',
    deletionPolicy: 'retain',
    exportable: false,
    rotation:
      rotation?.enabled && rotation.interval ? { enabled: true, interval: rotation.interval } : { enabled: false },
  };
}

export function buildAutoKey(namespace: string, cluster: string, spec: KdcClusterSpec) {
  return {
    apiVersion: KMSKEY_API_VERSION,
    kind: KMS_KEY.kind,
    metadata: {
      name: clusterNames(cluster).autoEtcdKey,
      namespace,
      labels: { [LABELS.kdcCluster]: cluster, [LABELS.managedBy]: MANAGED_BY_KDCCLUSTER },
    },
    spec: desiredAutoKeySpec(spec),
  };
}

/** The rotation of the auto key differs from what the cluster asks (the only field we steer). */
export function autoKeyRotationDrift(
  current: { rotation?: { enabled?: boolean; interval?: string } } | undefined,
  spec: KdcClusterSpec,
): boolean {
  const wanted = desiredAutoKeySpec(spec).rotation!;
  const actual = current?.rotation ?? { enabled: false };
  return (
    Boolean(actual.enabled) !== Boolean(wanted.enabled) ||
    (wanted.enabled === true && actual.interval !== wanted.interval)
  );
}
