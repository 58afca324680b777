import type { TenantControlPlane } from '../api/tenantcontrolplane.ts';
import type { KubeObject } from '../runtime/kube.ts';
import { identityWithLabels } from '../runtime/informer.ts';
import { KMS_PLUGIN_CONTAINERS, TCP_PATCH } from '../names.ts';

/** What the cluster rules read of a TenantControlPlane: a whole one, or tcpAttachmentView's. */
export interface TcpAttachment {
  metadata: { name?: string; ownerReferences?: unknown[] };
  spec: {
    controlPlane: {
      deployment?: {
        extraArgs?: { apiServer?: string[] };
        additionalInitContainers?: { name: string }[];
      };
    };
  };
}

const isOurFlag = (arg: string) => arg.startsWith(`${TCP_PATCH.encryptionProviderFlag}=`);
const isOurSidecar = (container: { name: string }) => KMS_PLUGIN_CONTAINERS.includes(container.name);
const isKamajiControlPlane = (ref: unknown) => (ref as { kind?: unknown } | null)?.kind === 'KamajiControlPlane';

/** Our flag or one of our sidecars is on the TCP: the tenant is attached to KMS right now. */
export function isAttached(tcp: TcpAttachment | null | undefined): boolean {
  const deployment = tcp?.spec.controlPlane.deployment;
  return (
    (deployment?.extraArgs?.apiServer ?? []).some(isOurFlag) ||
    (deployment?.additionalInitContainers ?? []).some(isOurSidecar)
  );
}

/** A Cluster API KamajiControlPlane owns this TCP and would overwrite our fields. */
export function kamajiControlPlaneOwner(tcp: TcpAttachment): string | undefined {
  const ref = (tcp.metadata.ownerReferences ?? []).find(isKamajiControlPlane) as { name?: string } | undefined;
  return ref?.name;
}

/**
 * An informer transform keeping of a TCP only what isAttached and kamajiControlPlaneOwner read
 * (a TCP with Kamaji's status runs to kilobytes; this is a few hundred bytes).
 */
export function tcpAttachmentView(tcp: TenantControlPlane & KubeObject): TcpAttachment & KubeObject {
  const deployment = tcp.spec?.controlPlane?.deployment;
  const flags = (deployment?.extraArgs?.apiServer ?? []).filter(isOurFlag);
  const sidecars = (deployment?.additionalInitContainers ?? []).filter(isOurSidecar).map(({ name }) => ({ name }));
  const owners = (tcp.metadata?.ownerReferences ?? []).filter(isKamajiControlPlane);
  return {
    metadata: { ...identityWithLabels(tcp, []), ...(owners.length ? { ownerReferences: owners } : {}) },
    spec: {
      controlPlane: {
        deployment: {
          ...(flags.length ? { extraArgs: { apiServer: flags } } : {}),
          ...(sidecars.length ? { additionalInitContainers: sidecars } : {}),
        },
      },
    },
  };
}
