import { desiredAccess } from '@kdc/encryption-reconciler';
import { OPENBAO_K8S_AUTH_MOUNT, kdcClusterSpecSchema, renderPolicy, type OpenBaoClient } from '@kdc/shared';

/**
 * Writes one cluster's OpenBao policy and Kubernetes-auth role exactly as the
 * encryption-reconciler would (SPEC 3.3), for tests that run the plugin or the backup job
 * without the controllers: `plugin` is tcp-<cluster>, `backup` is backup-<cluster>.
 */
export async function writeClusterAccess(root: OpenBaoClient, namespace: string, cluster: string, which: 'plugin' | 'backup'): Promise<void> {
  const access = desiredAccess(namespace, cluster, kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } }));
  const index = which === 'plugin' ? 0 : 1;
  await root.writePolicy(access.policies[index]!.name, renderPolicy(access.policies[index]!.rules));
  await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, access.roles[index]!.name, access.roles[index]!.body);
}
