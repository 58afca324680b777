// The Kamaji half of the local runner that needs no process: the subset of a TenantControlPlane
// it reads, and the control-plane Pod that TCP becomes (the kube-apiserver container with
// Kamaji's flags and mounts, and every additional init container, container, volume, mount and
// extra argument merged the way Kamaji merges them). Pure; kamaji-runner.ts runs the result.
import { createHash } from 'node:crypto';
import type { KubeObject } from '@kdc/shared';
import type { ContainerSpec, PodObject, ProbeSpec, VolumeMountSpec, VolumeSpec } from './kamaji-pod.ts';

export const NAME_LABEL = 'kamaji.clastix.io/name';
/** spec.nodeName of every Pod object the runner reports. */
export const LOCAL_NODE_NAME = 'kamaji-local-runner';

// ---- the TenantControlPlane subset we read ------------------------------------------------------

export interface TcpDeployment {
  replicas?: number;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  podSecurityContext?: Record<string, unknown>;
  containerSecurityContexts?: { apiServer?: Record<string, unknown> };
  resources?: { apiServer?: Record<string, unknown> };
  additionalInitContainers?: ContainerSpec[];
  additionalContainers?: ContainerSpec[];
  additionalVolumes?: VolumeSpec[];
  additionalVolumeMounts?: { apiServer?: VolumeMountSpec[] };
  extraArgs?: { apiServer?: string[] };
  podAdditionalMetadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  registrySettings?: { registry?: string; apiServerImage?: string; tagSuffix?: string };
  probes?: Record<string, Record<string, Record<string, number> | undefined> | Record<string, number> | undefined>;
}

export interface TenantControlPlane extends KubeObject {
  metadata: { name: string; namespace: string; uid?: string; deletionTimestamp?: string };
  spec: {
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
  };
  status?: Record<string, unknown>;
}

// ---- Kamaji's pod template ----------------------------------------------------------------------

/** Hash of what rolls Kamaji's deployment: version, deployment (incl. podAdditionalMetadata), networkProfile. */
export function templateHash(tcp: Pick<TenantControlPlane, 'spec'>): string {
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

/**
 * Kamaji's mergeAPIServerArgs: Kamaji-managed flags always win (user duplicates dropped), safe
 * defaults apply only where the user did not set the flag, user extraArgs follow verbatim.
 */
export function mergeApiServerArgs(
  userExtras: string[],
  safeDefaults: Record<string, string>,
  managed: Record<string, string>,
): string[] {
  const flagOf = (arg: string) => arg.split('=')[0]!;
  const extras = userExtras.filter((a) => !(flagOf(a) in managed));
  const userFlags = new Set(extras.map(flagOf));
  const format = (flag: string, value: string) => (value === '' ? flag : `${flag}=${value}`);
  const owned = [
    ...Object.entries(safeDefaults)
      .filter(([flag]) => !userFlags.has(flag))
      .map(([f, v]) => format(f, v)),
    ...Object.entries(managed).map(([f, v]) => format(f, v)),
  ].sort();
  return [...owned, ...extras];
}

export function firstServiceIp(cidr: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const ip = (n + 1) >>> 0;
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

export const pkiPaths = {
  ca: ['ca.crt', 'ca.key'],
  apiServer: ['apiserver.crt', 'apiserver.key'],
  apiServerKubeletClient: ['apiserver-kubelet-client.crt', 'apiserver-kubelet-client.key'],
  frontProxyCA: ['front-proxy-ca.crt', 'front-proxy-ca.key'],
  frontProxyClient: ['front-proxy-client.crt', 'front-proxy-client.key'],
  sa: ['sa.pub', 'sa.key'],
} as const;

/** The Pod Kamaji's Deployment would create for this TCP (minus controller-manager and scheduler). */
/** Where the tenant apiserver keeps its data: the platform's etcd, or a DataStore over TLS. */
export interface EtcdTarget {
  servers: string;
  /** The `<tcp>-datastore-certs` Secret (ca.crt, server.crt, server.key) for a TLS DataStore. */
  certsSecret?: string;
}

export const datastoreCertsSecret = (tcp: string) => `${tcp}-datastore-certs`;

export function buildPod(tcp: TenantControlPlane, hash: string, etcd: EtcdTarget): PodObject {
  const d = tcp.spec.controlPlane?.deployment ?? {};
  const np = tcp.spec.networkProfile ?? {};
  const name = tcp.metadata.name;
  const port = apiServerPort(tcp);
  const pki = '/etc/kubernetes/pki';
  const serviceCidrs = np.serviceCidrs?.length ? np.serviceCidrs : [np.serviceCidr ?? '10.96.0.0/16'];
  const safeDefaults: Record<string, string> = {
    '--allow-privileged': 'true',
    '--authorization-mode': 'Node,RBAC',
    '--enable-bootstrap-token-auth': 'true',
    '--requestheader-extra-headers-prefix': 'X-Remote-Extra-',
    '--requestheader-group-headers': 'X-Remote-Group',
    '--requestheader-username-headers': 'X-Remote-User',
    '--service-account-issuer': 'https://kubernetes.default.svc.cluster.local',
    // Local additions (not Kamaji's): loopback endpoints are refused by the endpoints API, and
    // priority-and-fairness costs start-up time on a small machine.
    '--endpoint-reconciler-type': 'none',
    '--enable-priority-and-fairness': 'false',
  };
  const managed: Record<string, string> = {
    '--advertise-address': np.advertiseAddress ?? np.address ?? '127.0.0.1',
    '--client-ca-file': `${pki}/ca.crt`,
    '--enable-admission-plugins': (tcp.spec.kubernetes?.admissionControllers ?? []).join(','),
    '--service-cluster-ip-range': serviceCidrs.join(','),
    '--kubelet-client-certificate': `${pki}/apiserver-kubelet-client.crt`,
    '--kubelet-client-key': `${pki}/apiserver-kubelet-client.key`,
    '--kubelet-preferred-address-types': (
      tcp.spec.kubernetes?.kubelet?.preferredAddressTypes ?? ['InternalIP', 'ExternalIP', 'Hostname']
    ).join(','),
    '--proxy-client-cert-file': `${pki}/front-proxy-client.crt`,
    '--proxy-client-key-file': `${pki}/front-proxy-client.key`,
    '--requestheader-allowed-names': 'front-proxy-client',
    '--requestheader-client-ca-file': `${pki}/front-proxy-ca.crt`,
    '--secure-port': String(port),
    '--service-account-key-file': `${pki}/sa.pub`,
    '--service-account-signing-key-file': `${pki}/sa.key`,
    '--tls-cert-file': `${pki}/apiserver.crt`,
    '--tls-private-key-file': `${pki}/apiserver.key`,
    // The platform's etcd (plain HTTP on loopback) unless the TCP names a DataStore.
    '--etcd-servers': etcd.servers,
    ...(etcd.certsSecret
      ? {
          '--etcd-cafile': `${pki}/etcd/ca.crt`,
          '--etcd-certfile': `${pki}/etcd/server.crt`,
          '--etcd-keyfile': `${pki}/etcd/server.key`,
        }
      : {}),
    '--etcd-prefix': etcdPrefix(tcp),
    '--etcd-compaction-interval': '0',
  };
  const probes = (d.probes ?? {}) as Record<string, Record<string, number> | undefined> & {
    apiServer?: Record<string, Record<string, number> | undefined>;
  };
  const probe = (path: string, kind: 'liveness' | 'readiness' | 'startup'): ProbeSpec => ({
    httpGet: { path, port, scheme: 'HTTPS' },
    initialDelaySeconds: 0,
    timeoutSeconds: 1,
    periodSeconds: 10,
    successThreshold: 1,
    failureThreshold: 3,
    ...(probes[kind] ?? {}),
    ...(probes.apiServer?.[kind] ?? {}),
  });
  const secrets = PKI_SECRETS(name);
  const secretProjection = (secretName: string, [cert, key]: readonly [string, string]) => ({
    secret: {
      name: secretName,
      items: [
        { key: cert, path: cert },
        { key, path: key },
      ],
    },
  });
  const apiServer: ContainerSpec & Record<string, unknown> = {
    name: 'kube-apiserver',
    image: apiServerImage(tcp),
    imagePullPolicy: 'Always',
    command: ['kube-apiserver'],
    args: mergeApiServerArgs(d.extraArgs?.apiServer ?? [], safeDefaults, managed),
    livenessProbe: probe('/livez', 'liveness'),
    readinessProbe: probe('/readyz', 'readiness'),
    startupProbe: probe('/livez', 'startup'),
    volumeMounts: [
      ...(d.additionalVolumeMounts?.apiServer ?? []),
      { name: 'etc-kubernetes-pki', readOnly: true, mountPath: pki },
      { name: 'etc-ca-certificates', readOnly: true, mountPath: '/etc/ca-certificates' },
      { name: 'usr-share-ca-certificates', readOnly: true, mountPath: '/usr/share/ca-certificates' },
      { name: 'usr-local-share-ca-certificates', readOnly: true, mountPath: '/usr/local/share/ca-certificates' },
    ],
    ...(d.containerSecurityContexts?.apiServer ? { securityContext: d.containerSecurityContexts.apiServer } : {}),
    ...(d.resources?.apiServer ? { resources: d.resources.apiServer } : {}),
  };
  const caSecret = { secretName: secrets.ca, defaultMode: 0o644 };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `${name}-${hash}-local`,
      namespace: tcp.metadata.namespace,
      labels: {
        ...(d.podAdditionalMetadata?.labels ?? {}),
        [NAME_LABEL]: name,
        'kamaji.clastix.io/component': 'deployment',
        'pod-template-hash': hash,
      },
      annotations: { ...(d.podAdditionalMetadata?.annotations ?? {}) },
      ...(tcp.metadata.uid
        ? {
            ownerReferences: [
              {
                apiVersion: 'kamaji.clastix.io/v1alpha1',
                kind: 'TenantControlPlane',
                name,
                uid: tcp.metadata.uid,
                controller: false,
              },
            ],
          }
        : {}),
    },
    spec: {
      nodeName: LOCAL_NODE_NAME,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      ...(d.serviceAccountName ? { serviceAccountName: d.serviceAccountName } : {}),
      ...(d.automountServiceAccountToken !== undefined
        ? { automountServiceAccountToken: d.automountServiceAccountToken }
        : {}),
      ...(d.podSecurityContext ? { securityContext: d.podSecurityContext } : {}),
      initContainers: d.additionalInitContainers ?? [],
      containers: [...(d.additionalContainers ?? []), apiServer],
      volumes: [
        ...(d.additionalVolumes ?? []),
        {
          name: 'etc-kubernetes-pki',
          projected: {
            defaultMode: 0o644,
            sources: [
              secretProjection(secrets.apiServer, pkiPaths.apiServer),
              secretProjection(secrets.ca, pkiPaths.ca),
              secretProjection(secrets.apiServerKubeletClient, pkiPaths.apiServerKubeletClient),
              secretProjection(secrets.frontProxyCA, pkiPaths.frontProxyCA),
              secretProjection(secrets.frontProxyClient, pkiPaths.frontProxyClient),
              secretProjection(secrets.sa, pkiPaths.sa),
              ...(etcd.certsSecret
                ? [
                    {
                      secret: {
                        name: etcd.certsSecret,
                        items: ['ca.crt', 'server.crt', 'server.key'].map((k) => ({ key: k, path: `etcd/${k}` })),
                      },
                    },
                  ]
                : []),
            ],
          },
        },
        { name: 'etc-ca-certificates', secret: caSecret },
        { name: 'usr-share-ca-certificates', secret: caSecret },
        { name: 'usr-local-share-ca-certificates', secret: caSecret },
      ],
    } as PodObject['spec'],
  };
}

// ---- the runner ---------------------------------------------------------------------------------
