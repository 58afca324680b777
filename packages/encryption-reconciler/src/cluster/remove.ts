import { OPENBAO_K8S_AUTH_MOUNT, legacyOpenBaoAccessNames, openBaoAccessNames, type OpenBaoClient } from '@kdc/shared';

// Taking a cluster's OpenBao access away. The scoped names (`tcp-<namespace>.<cluster>`) can only
// belong to this cluster. The legacy per-organisation names (`tcp-<cluster>`) may belong to a
// namesake in another project: they are deleted only while their role is bound to this
// namespace, policy first, so an interrupted removal never leaves a policy whose owner is unknown.

export type RemovalCounter = (object: 'role' | 'policy') => void;

export async function removeClusterAccess(
  bao: OpenBaoClient,
  namespace: string,
  cluster: string,
  count: RemovalCounter = () => undefined,
): Promise<void> {
  const scoped = openBaoAccessNames(namespace, cluster);
  for (const [policy, role] of [
    [scoped.pluginPolicy, scoped.pluginRole],
    [scoped.backupPolicy, scoped.backupRole],
  ] as const) {
    await deletePolicy(bao, policy, count);
    await deleteRole(bao, role, count);
  }
  const legacy = legacyOpenBaoAccessNames(cluster);
  for (const [policy, role] of [
    [legacy.pluginPolicy, legacy.pluginRole],
    [legacy.backupPolicy, legacy.backupRole],
  ] as const) {
    if (!boundOnlyTo(await bao.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role), namespace)) continue;
    await deletePolicy(bao, policy, count);
    await deleteRole(bao, role, count);
  }
}

/** A Kubernetes-auth role bound to exactly this namespace (and no other, no wildcard). */
export function boundOnlyTo(role: Record<string, unknown> | null, namespace: string): boolean {
  const bound = role?.bound_service_account_namespaces;
  return Array.isArray(bound) && bound.length === 1 && bound[0] === namespace;
}

async function deletePolicy(bao: OpenBaoClient, name: string, count: RemovalCounter): Promise<void> {
  if ((await bao.readPolicy(name)) === null) return;
  await bao.deletePolicy(name);
  count('policy');
}

async function deleteRole(bao: OpenBaoClient, name: string, count: RemovalCounter): Promise<void> {
  if (!(await bao.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, name))) return;
  await bao.deleteAuthRole(OPENBAO_K8S_AUTH_MOUNT, name);
  count('role');
}
