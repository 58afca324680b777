import type { TenantControlPlane } from '../api/tenantcontrolplane.ts';
import { KMS_PLUGIN_CONTAINERS, TCP_PATCH } from '../names.ts';

/** Our flag or one of our sidecars is on the TCP: the tenant is attached to KMS right now. */
export function isAttached(tcp: TenantControlPlane | null | undefined): boolean {
  const deployment = tcp?.spec.controlPlane.deployment;
  return (
    (deployment?.extraArgs?.apiServer ?? []).some((a) => a.startsWith(`${TCP_PATCH.encryptionProviderFlag}=`)) ||
    (deployment?.additionalInitContainers ?? []).some((c) => KMS_PLUGIN_CONTAINERS.includes(c.name))
  );
}

/** A Cluster API KamajiControlPlane owns this TCP and would overwrite our fields. */
export function kamajiControlPlaneOwner(tcp: TenantControlPlane): string | undefined {
  const refs = (tcp.metadata.ownerReferences ?? []) as { kind?: string; name?: string }[];
  return refs.find((r) => r.kind === 'KamajiControlPlane')?.name;
}
