// A cluster's TenantControlPlane, whole, as the reconcile reads it.
import { at, RESOURCES, type Cache, type KubeClient, type TenantControlPlaneObject } from '@kdc/shared';
import type { TcpPlacement } from './datastore.ts';

export interface ControlPlaneSources {
  kube: Pick<KubeClient, 'getOrNull'>;
  /** The release's TCP cache (a sharded release's holds only the TCPs carrying its shard labels). */
  tcps: Cache<TenantControlPlaneObject>;
  /** Every TCP's placement; absent when `tcps` holds them all. */
  placements?: Cache<TcpPlacement>;
}

/**
 * From the cache; a TCP that exists without this shard's labels (made before the release was
 * sharded, by someone else, or its cluster moved here from another shard) is read directly, and
 * the plan labels it (labelTenantControlPlane), after which the cache has it. A cluster with no TCP
 * yet costs no read.
 */
export async function controlPlaneOf(
  sources: ControlPlaneSources,
  name: string,
  namespace: string,
): Promise<TenantControlPlaneObject | null> {
  const cached = sources.tcps.get(name, namespace);
  if (cached) return cached;
  if (!sources.placements?.get(name, namespace)) return null;
  return sources.kube.getOrNull(at(RESOURCES.tenantControlPlane, namespace, name));
}
