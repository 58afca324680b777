// The Pod API subset the local kubelet reads. Loose on purpose: a field it does not know is
// ignored, never an error, as the apiserver has already admitted the object.
import type { KubeObject } from '@kdc/shared';

export interface ProbeSpec {
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: string;
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string };
  exec?: { command?: string[] };
  grpc?: { port: number };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface SecurityContextSpec {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface PodSecurityContextSpec {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  fsGroup?: number;
  supplementalGroups?: number[];
}

export interface VolumeMountSpec {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export type KeySelector = { name?: string; key: string; optional?: boolean };
export interface EnvVarSpec {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: KeySelector;
    configMapKeyRef?: KeySelector;
    resourceFieldRef?: unknown;
  };
}

export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVarSpec[];
  envFrom?: {
    prefix?: string;
    secretRef?: { name: string; optional?: boolean };
    configMapRef?: { name: string; optional?: boolean };
  }[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  volumeMounts?: VolumeMountSpec[];
  restartPolicy?: string;
  startupProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  securityContext?: SecurityContextSpec;
}

export type KeyToPath = { key: string; path: string; mode?: number };
export type DownwardItem = { path: string; fieldRef?: { fieldPath: string }; mode?: number };
export interface VolumeSpec {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  hostPath?: { path: string; type?: string };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  secret?: { secretName?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  configMap?: { name?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  downwardAPI?: { items?: DownwardItem[]; defaultMode?: number };
  projected?: {
    defaultMode?: number;
    sources?: {
      secret?: { name?: string; items?: KeyToPath[]; optional?: boolean };
      configMap?: { name?: string; items?: KeyToPath[]; optional?: boolean };
      downwardAPI?: { items?: DownwardItem[] };
      serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
    }[];
  };
  [other: string]: unknown;
}

export interface PodSpecLite {
  nodeName?: string;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  initContainers?: ContainerSpec[];
  containers: ContainerSpec[];
  volumes?: VolumeSpec[];
  securityContext?: PodSecurityContextSpec;
  terminationGracePeriodSeconds?: number;
  /** Always (default): main containers are restarted; Never / OnFailure: the pod runs to completion (Jobs). */
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface PodObject extends KubeObject {
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
  };
  spec: PodSpecLite;
  /** Only what the apiserver computed at admission is read back (qosClass). */
  status?: { qosClass?: string; [field: string]: unknown };
}

/** What a workload's spec.template holds. */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpecLite;
}

export const isSidecar = (c: ContainerSpec) => c.restartPolicy === 'Always';

/** A named or numeric container port as a number (undefined: no such named port). */
export function resolvePort(c: ContainerSpec, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** Every TCP port of the pod a client or a probe may connect to. */
export function podPorts(spec: PodSpecLite): number[] {
  const ports = new Set<number>();
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    for (const p of c.ports ?? []) if (!p.protocol || p.protocol === 'TCP') ports.add(p.containerPort);
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
      const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
      if (port !== undefined) {
        const n = resolvePort(c, port);
        if (n) ports.add(n);
      }
    }
  }
  return [...ports];
}

/** `namespace/name` of the pod's owner of `kind`, if it has one. */
export function ownerKey(pod: PodObject, kind: string): string | undefined {
  const owner = pod.metadata.ownerReferences?.find((o) => o.kind === kind);
  return owner ? `${pod.metadata.namespace}/${owner.name}` : undefined;
}
