// The TenantControlPlane status Kamaji reports, from the control-plane pods it runs. Pure; the
// controller writes it through the status subresource only when it differs from what is there.
import { NAME_LABEL, PKI_SECRETS, etcdPrefix, templateHash, type TenantControlPlane } from './tcp.ts';

export interface ReplicaState {
  hash: string;
  ready: boolean;
}

export type VersionStatus = 'Provisioning' | 'Ready' | 'NotReady' | 'Sleeping';

function deploymentStatus(tcp: TenantControlPlane, counts: { replicas: number; ready: number; updated: number }) {
  return {
    name: tcp.metadata.name,
    namespace: tcp.metadata.namespace,
    replicas: counts.replicas,
    readyReplicas: counts.ready,
    availableReplicas: counts.ready,
    updatedReplicas: counts.updated,
    selector: `${NAME_LABEL}=${tcp.metadata.name}`,
  };
}

/** Status of a TCP with pods: `everReady` tells NotReady (it served before) from Provisioning. */
export function tcpStatus(input: {
  tcp: TenantControlPlane;
  hostPort: number;
  replicas: readonly ReplicaState[];
  everReady: boolean;
}) {
  const { tcp } = input;
  const names = PKI_SECRETS(tcp.metadata.name);
  const hash = templateHash(tcp);
  const ready = input.replicas.filter((r) => r.ready).length;
  const status: VersionStatus = ready ? 'Ready' : input.everReady ? 'NotReady' : 'Provisioning';
  return {
    controlPlaneEndpoint: `127.0.0.1:${input.hostPort}`,
    kubeconfig: { admin: { secretName: names.adminKubeconfig } },
    certificates: {
      ca: { secretName: names.ca },
      apiServer: { secretName: names.apiServer },
      apiServerKubeletClient: { secretName: names.apiServerKubeletClient },
      frontProxyCA: { secretName: names.frontProxyCA },
      frontProxyClient: { secretName: names.frontProxyClient },
      sa: { secretName: names.sa },
    },
    storage: {
      driver: 'etcd',
      dataStoreName: tcp.spec.dataStore ?? 'local-platform-etcd',
      setup: { schema: etcdPrefix(tcp).slice(1) },
    },
    kubernetesResources: {
      version: { version: tcp.spec.kubernetes?.version ?? '', status },
      deployment: deploymentStatus(tcp, {
        replicas: tcp.spec.controlPlane?.deployment?.replicas ?? 1,
        ready,
        updated: input.replicas.filter((r) => r.hash === hash).length,
      }),
    },
  };
}

/** Status of a TCP scaled to zero: Kamaji's Deployment has no pods. */
export function sleepingStatus(tcp: TenantControlPlane) {
  const status: VersionStatus = 'Sleeping';
  return {
    kubernetesResources: {
      version: { version: tcp.spec.kubernetes?.version ?? '', status },
      deployment: deploymentStatus(tcp, { replicas: 0, ready: 0, updated: 0 }),
    },
  };
}

/** `actual` has every field of `wanted` with equal values. */
export function contains(actual: unknown, wanted: unknown): boolean {
  if (wanted !== null && typeof wanted === 'object' && !Array.isArray(wanted)) {
    if (!actual || typeof actual !== 'object') return false;
    return Object.entries(wanted).every(([k, v]) => contains(Reflect.get(actual, k), v));
  }
  return JSON.stringify(actual) === JSON.stringify(wanted);
}
