// What the local Kamaji reads of a TenantControlPlane, and the names Kamaji gives what it makes
// for one. The product's schema (packages/shared) has only the fields the platform reads or
// writes; Kamaji also reads the network profile, registry settings, probes and more. Pure.
import { createHash } from 'node:crypto';
import type { TenantControlPlaneObject } from '@kdc/shared';
import type {
  ContainerSpec,
  PodSecurityContextSpec,
  SecurityContextSpec,
  VolumeMountSpec,
  VolumeSpec,
} from '../kubelet/pod-spec.ts';

export const NAME_LABEL = 'kamaji.clastix.io/name';
/** The field manager of what the local Kamaji applies, and its managed-by label. */
export const FIELD_MANAGER = 'kamaji-local-runner';

/** Kamaji's overrides of a probe's timing. */
export interface ProbeTiming {
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}
export type ProbeKind = 'liveness' | 'readiness' | 'startup';

export interface TcpDeployment {
  replicas?: number;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  podSecurityContext?: PodSecurityContextSpec;
  containerSecurityContexts?: { apiServer?: SecurityContextSpec };
  resources?: { apiServer?: Record<string, unknown> };
  additionalInitContainers?: ContainerSpec[];
  additionalContainers?: ContainerSpec[];
  additionalVolumes?: VolumeSpec[];
  additionalVolumeMounts?: { apiServer?: VolumeMountSpec[] };
  extraArgs?: { apiServer?: string[] };
  podAdditionalMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  registrySettings?: { registry?: string; apiServerImage?: string; tagSuffix?: string };
  /** Every component's probes, then the apiserver's own. */
  probes?: Partial<Record<ProbeKind, ProbeTiming>> & { apiServer?: Partial<Record<ProbeKind, ProbeTiming>> };
}

export interface TcpSpec {
  dataStore?: string;
  dataStoreSchema?: string;
  controlPlane?: { deployment?: TcpDeployment };
  kubernetes?: { version?: string; admissionControllers?: string[]; kubelet?: { preferredAddressTypes?: string[] } };
  networkProfile?: {
    port?: number;
    address?: string;
    advertiseAddress?: string;
    certSANs?: string[];
    serviceCidr?: string;
    serviceCidrs?: string[];
  };
}

/** A TenantControlPlane of a namespace, as Kamaji reads it. */
export interface TenantControlPlane {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; uid?: string; deletionTimestamp?: string };
  spec: TcpSpec;
  status?: Record<string, unknown>;
}

/** The object as read from the API, with its namespace (undefined: a cluster-scoped read, never a TCP). */
export function readTcp(object: TenantControlPlaneObject): TenantControlPlane | undefined {
  const { name, namespace, uid, deletionTimestamp } = object.metadata;
  if (!namespace) return undefined;
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name, namespace, uid, deletionTimestamp },
    spec: object.spec,
    status: object.status,
  };
}

/** Hash of what rolls Kamaji's deployment: version, deployment (incl. podAdditionalMetadata), networkProfile. */
export function templateHash(tcp: { spec: TcpSpec }): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  const input = JSON.stringify(
    canonical({
      version: tcp.spec.kubernetes?.version,
      deployment: tcp.spec.controlPlane?.deployment ?? {},
      networkProfile: tcp.spec.networkProfile ?? {},
    }),
  );
  return createHash('sha256').update(input).digest('hex').slice(0, 10);
}

export const apiServerPort = (tcp: TenantControlPlane) => tcp.spec.networkProfile?.port ?? 6443;

export const etcdPrefix = (tcp: TenantControlPlane) =>
  `/${tcp.spec.dataStoreSchema ?? `${tcp.metadata.namespace}_${tcp.metadata.name}`}`;

export function apiServerImage(tcp: TenantControlPlane): string {
  const r = tcp.spec.controlPlane?.deployment?.registrySettings ?? {};
  return `${r.registry ?? 'registry.k8s.io'}/${r.apiServerImage ?? 'kube-apiserver'}:${tcp.spec.kubernetes?.version ?? 'v1.36.3'}${r.tagSuffix ?? ''}`;
}

export const PKI_SECRETS = (tcp: string) => ({
  ca: `${tcp}-ca`,
  apiServer: `${tcp}-api-server-certificate`,
  apiServerKubeletClient: `${tcp}-api-server-kubelet-client-certificate`,
  frontProxyCA: `${tcp}-front-proxy-ca-certificate`,
  frontProxyClient: `${tcp}-front-proxy-client-certificate`,
  sa: `${tcp}-sa-certificate`,
  adminKubeconfig: `${tcp}-admin-kubeconfig`,
});

/** The file names of each PKI Secret's certificate and key (as mounted under /etc/kubernetes/pki). */
export const pkiPaths = {
  ca: ['ca.crt', 'ca.key'],
  apiServer: ['apiserver.crt', 'apiserver.key'],
  apiServerKubeletClient: ['apiserver-kubelet-client.crt', 'apiserver-kubelet-client.key'],
  frontProxyCA: ['front-proxy-ca.crt', 'front-proxy-ca.key'],
  frontProxyClient: ['front-proxy-client.crt', 'front-proxy-client.key'],
  sa: ['sa.pub', 'sa.key'],
} as const;

export type PkiPart = keyof typeof pkiPaths;
export const PKI_PARTS: readonly PkiPart[] = [
  'ca',
  'apiServer',
  'apiServerKubeletClient',
  'frontProxyCA',
  'frontProxyClient',
  'sa',
];

export const datastoreCertsSecret = (tcp: string) => `${tcp}-datastore-certs`;

/** Where the tenant apiserver keeps its data: the platform's etcd, or a DataStore over TLS. */
export interface EtcdTarget {
  servers: string;
  /** The `<tcp>-datastore-certs` Secret (ca.crt, server.crt, server.key) for a TLS DataStore. */
  certsSecret?: string;
}
