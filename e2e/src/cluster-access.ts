import { desiredAccess } from '@kdc/encryption-reconciler';
import {
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  kdcClusterSpecSchema,
  renderPolicy,
  transitKeyName,
  type OpenBaoClient,
} from '@kdc/shared';

/**
 * Writes one cluster's OpenBao policy and Kubernetes-auth role exactly as the
 * encryption-reconciler would (SPEC 3.3), for tests that run the plugin or the backup job
 * without the controllers: `plugin` is tcp-<namespace>.<cluster>, `backup` is backup-<namespace>.<cluster>,
 * both on the Transit key of the cluster's auto key.
 */
export async function writeClusterAccess(
  root: OpenBaoClient,
  namespace: string,
  cluster: string,
  which: 'plugin' | 'backup',
): Promise<void> {
  const transitKey = transitKeyName(namespace, clusterNames(cluster).autoEtcdKey);
  const spec = kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } });
  const access = desiredAccess(namespace, cluster, spec, { etcd: transitKey, backup: transitKey });
  const index = which === 'plugin' ? 0 : 1;
  await root.writePolicy(access.policies[index]!.name, renderPolicy(access.policies[index]!.rules));
  await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, access.roles[index]!.name, access.roles[index]!.body);
}
