import {
  ANNOTATIONS,
  ENCRYPTION_CONFIG_PATH,
  KAMAJI_API_VERSION,
  KMS_PLUGIN_CONTAINERS,
  KMS_SOCKET_DIR,
  LABELS,
  kmsPluginSlot,
  OPENBAO_AUDIENCE,
  OPENBAO_K8S_AUTH_MOUNT,
  OPENBAO_TRANSIT_MOUNT,
  TCP_PATCH,
  TENANT_CONTROL_PLANE,
  clusterNames,
  presentShardLabels,
  openBaoAccessNames,
  type KdcClusterSpec,
  type PluginSlot,
  type TcpContainer,
  type TcpDeployment,
  type TcpVolume,
  type TenantControlPlane,
} from '@kdc/shared';

// The TenantControlPlane of one cluster (SPEC 3.5): the object we create when there is none, and
// the encryption fields we merge into whatever is there. Kamaji's lists have no merge keys, so
// the merge is ours: by name, keeping every entry somebody else put there, in place.

/**
 * `shard`: the cluster's values of the labels its release's CLUSTER_SELECTOR reads (shardLabels),
 * so that the release's TCP informer, selecting with it, sees this object.
 */
export function buildTenantControlPlane(
  namespace: string,
  cluster: string,
  spec: KdcClusterSpec,
  shard: Readonly<Record<string, string | null>> = {},
): TenantControlPlane {
  return {
    apiVersion: KAMAJI_API_VERSION,
    kind: TENANT_CONTROL_PLANE.kind,
    metadata: {
      name: clusterNames(cluster).tenantControlPlane,
      namespace,
      labels: { ...presentShardLabels(shard), [LABELS.kdcCluster]: cluster },
    },
    spec: {
      ...(spec.dataStore ? { dataStore: spec.dataStore } : {}),
      controlPlane: { deployment: { replicas: spec.controlPlane.replicas }, service: { serviceType: 'ClusterIP' } },
      kubernetes: { version: spec.version, kubelet: { cgroupfs: 'systemd' } },
      // Kamaji's CEL rules read networkProfile, so it must exist; its fields have defaults.
      networkProfile: { port: 6443 },
    },
  };
}

/**
 * The shard labels a TCP lacks or carries wrongly (a merge patch of metadata.labels: null removes),
 * or undefined when it carries them all. A TCP made before its release was sharded, made by
 * someone else, or whose cluster moved here from another shard.
 */
export function shardLabelDrift(
  tcp: TenantControlPlane,
  shard: Readonly<Record<string, string | null>> = {},
): Record<string, string | null> | undefined {
  const labels = tcp.metadata.labels ?? {};
  const drift = Object.entries(shard).filter(([key, value]) => (labels[key] ?? null) !== value);
  return drift.length ? Object.fromEntries(drift) : undefined;
}

export interface EncryptionFieldsInput {
  namespace: string;
  cluster: string;
  pluginImage: string;
  openBaoUrl: string;
  /** URLs earlier plugins of this TCP were given (legacyOpenBaoUrls): rows under their kdc1 key_ids must stay readable. */
  legacyOpenBaoUrls?: readonly string[];
  /** The organisation's OpenBao namespace; absent = root. */
  openBaoNamespace?: string;
  hasCaBundle: boolean;
  /** The plugin instances, writer first (one; two during a key switch), each with its Transit key. */
  plugins: readonly { slot: PluginSlot; transitKey: string }[];
  /** contentHash of the encryption-config Secret: a change rolls the control-plane pods. */
  configHash: string;
}

export interface EncryptionFields {
  initContainers: TcpContainer[];
  volumes: TcpVolume[];
  apiServerMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  apiServerArgs: string[];
  serviceAccountName: string;
  podAnnotations: Record<string, string>;
}

const dropAll = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function buildEncryptionFields(input: EncryptionFieldsInput): EncryptionFields {
  const names = clusterNames(input.cluster);
  const socketInit: TcpContainer = {
    name: TCP_PATCH.socketInitContainer,
    // The plugin's own image: no shell image to pull, pin or trust. The plugin runs as non-root;
    // the apiserver (root) still reaches the 0700 socket dir.
    image: input.pluginImage,
    args: ['prepare-socket-dir', `--dir=${KMS_SOCKET_DIR}`, `--owner=${TCP_PATCH.pluginUid}:${TCP_PATCH.pluginUid}`],
    securityContext: { ...dropAll, runAsUser: 0, runAsNonRoot: false, capabilities: { drop: ['ALL'], add: ['CHOWN'] } },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '32Mi' } },
    volumeMounts: [{ name: TCP_PATCH.socketVolume, mountPath: KMS_SOCKET_DIR }],
  };
  const plugin = ({ slot, transitKey }: { slot: PluginSlot; transitKey: string }): TcpContainer => {
    const instance = kmsPluginSlot(slot);
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
      httpGet: { path, port: instance.probePort },
      periodSeconds,
      failureThreshold,
      timeoutSeconds: 2,
    });
    return {
      name: instance.container,
      image: input.pluginImage,
      restartPolicy: 'Always',
      args: [
        `--socket=${instance.socketPath}`,
        `--openbao-addr=${input.openBaoUrl}`,
        ...(input.legacyOpenBaoUrls ?? []).map((url) => `${LEGACY_ADDR_FLAG}=${url}`),
        ...(input.hasCaBundle ? [`--openbao-ca-file=${TCP_PATCH.caDir}/${TCP_PATCH.caKey}`] : []),
        ...(input.openBaoNamespace ? [`--openbao-namespace=${input.openBaoNamespace}`] : []),
        `--transit-mount=${OPENBAO_TRANSIT_MOUNT}`,
        `--transit-key=${transitKey}`,
        '--auth-method=kubernetes',
        `--auth-mount=${OPENBAO_K8S_AUTH_MOUNT}`,
        `--auth-role=${openBaoAccessNames(input.namespace, input.cluster).pluginRole}`,
        `--token-file=${TCP_PATCH.tokenDir}/${TCP_PATCH.tokenFile}`,
        // Metrics stay on loopback (SPEC 4). kubelet probes and k8-manager come over the pod
        // network, to a listener that serves health, readiness and the key version only.
        `--metrics-addr=127.0.0.1:${instance.metricsPort}`,
        `--probe-addr=0.0.0.0:${instance.probePort}`,
      ],
      ports: [
        {
          name: slot === 'a' ? 'kms-probes' : `kms-probes-${slot}`,
          containerPort: instance.probePort,
          protocol: 'TCP',
        },
      ],
      startupProbe: probe('/healthz', 1, 30),
      readinessProbe: probe('/readyz', 5, 3),
      livenessProbe: probe('/healthz', 10, 3),
      resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '192Mi' } },
      securityContext: {
        ...dropAll,
        runAsNonRoot: true,
        runAsUser: TCP_PATCH.pluginUid,
        runAsGroup: TCP_PATCH.pluginUid,
        readOnlyRootFilesystem: true,
      },
      volumeMounts: [
        { name: TCP_PATCH.socketVolume, mountPath: KMS_SOCKET_DIR },
        { name: TCP_PATCH.tokenVolume, mountPath: TCP_PATCH.tokenDir, readOnly: true },
        ...(input.hasCaBundle ? [{ name: TCP_PATCH.caVolume, mountPath: TCP_PATCH.caDir, readOnly: true }] : []),
      ],
    };
  };
  const secretVolume = (name: string, key: string) => ({
    name,
    secret: { secretName: names.encryptionConfigSecret, items: [{ key, path: key }], defaultMode: 0o440 },
  });
  return {
    initContainers: [socketInit, ...input.plugins.map(plugin)],
    volumes: [
      { name: TCP_PATCH.socketVolume, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
      secretVolume(TCP_PATCH.encryptionConfigVolume, TCP_PATCH.encryptionConfigKey),
      {
        name: TCP_PATCH.tokenVolume,
        projected: {
          sources: [
            { serviceAccountToken: { audience: OPENBAO_AUDIENCE, expirationSeconds: 3600, path: TCP_PATCH.tokenFile } },
          ],
          defaultMode: 0o440,
        },
      },
      ...(input.hasCaBundle ? [secretVolume(TCP_PATCH.caVolume, TCP_PATCH.caKey)] : []),
    ],
    apiServerMounts: [
      { name: TCP_PATCH.socketVolume, mountPath: KMS_SOCKET_DIR },
      { name: TCP_PATCH.encryptionConfigVolume, mountPath: TCP_PATCH.encryptionConfigDir, readOnly: true },
    ],
    apiServerArgs: [`${TCP_PATCH.encryptionProviderFlag}=${ENCRYPTION_CONFIG_PATH}`],
    serviceAccountName: names.kmsPluginServiceAccount,
    podAnnotations: { [ANNOTATIONS.encryptionConfigHash]: input.configHash },
  };
}

const ADDR_FLAG = '--openbao-addr';
const LEGACY_ADDR_FLAG = '--legacy-key-id-openbao-addr';
const withoutSlash = (url: string) => url.replace(/\/$/, '');

/**
 * The URLs whose kdc1 key_ids the plugin must keep accepting once it reaches OpenBao by
 * `openBaoUrl`: every URL the plugins now on the TCP were given (its --openbao-addr and its legacy
 * ones), in the order they were added, except `openBaoUrl` itself. Rows written by plugins before
 * kdc2 carry ids that hash the URL; forgetting one makes those rows unreadable. Unchanged URL,
 * unchanged list, so a steady cluster is not rolled.
 */
export function legacyOpenBaoUrls(deployment: TcpDeployment | undefined, openBaoUrl: string): string[] {
  const given = [
    ...pluginFlagValues(deployment, KMS_PLUGIN_CONTAINERS, LEGACY_ADDR_FLAG),
    ...pluginFlagValues(deployment, KMS_PLUGIN_CONTAINERS, ADDR_FLAG),
  ].filter((url) => /^https?:\/\/[^/\s]+/.test(url));
  return [...new Set(given.map(withoutSlash))].filter((url) => url !== withoutSlash(openBaoUrl));
}

/** The values of `--flag=value` on the named plugin containers now on the TCP, in container order. */
export function pluginFlagValues(
  deployment: TcpDeployment | undefined,
  containers: readonly string[],
  flag: string,
): string[] {
  const args =
    deployment?.additionalInitContainers?.filter((c) => containers.includes(c.name)).flatMap((c) => c.args ?? []) ?? [];
  return args.filter((a) => a.startsWith(`${flag}=`)).map((a) => a.slice(flag.length + 1));
}

const OUR_CONTAINERS: readonly string[] = [TCP_PATCH.socketInitContainer, ...KMS_PLUGIN_CONTAINERS];
const OUR_VOLUMES: readonly string[] = [
  TCP_PATCH.socketVolume,
  TCP_PATCH.encryptionConfigVolume,
  TCP_PATCH.tokenVolume,
  TCP_PATCH.caVolume,
];
const isOurFlag = (arg: string) =>
  arg === TCP_PATCH.encryptionProviderFlag || arg.startsWith(`${TCP_PATCH.encryptionProviderFlag}=`);

/** `actual` has every field `wanted` has, with equal values (the apiserver may add defaults). */
export function contains(actual: unknown, wanted: unknown): boolean {
  if (Array.isArray(wanted))
    return Array.isArray(actual) && actual.length === wanted.length && wanted.every((w, i) => contains(actual[i], w));
  if (wanted !== null && typeof wanted === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    return Object.entries(wanted).every(
      ([k, v]) => v === undefined || contains((actual as Record<string, unknown>)[k], v),
    );
  }
  return actual === wanted;
}

/**
 * Merges `ours` into a list by name. Entries of others stay where they are; ours are kept as
 * they are when they already say what we want (so a reconcile of an unchanged object changes
 * nothing), replaced in place when they differ, and appended in our order when missing or out
 * of order. `ownedNames` lists every name we may own, so stale ones (e.g. the CA volume after a
 * CA is removed) are dropped.
 */
export function mergeByName<T extends { name: string }>(
  current: readonly T[] | undefined,
  ours: readonly T[],
  ownedNames: readonly string[],
): T[] {
  const list = current ?? [];
  const wanted = new Map(ours.map((o) => [o.name, o]));
  const present = list.filter((item) => wanted.has(item.name)).map((item) => item.name);
  const inOrder = present.length === ours.length && present.every((name, i) => name === ours[i]!.name);
  if (inOrder) {
    return list
      .filter((item) => !ownedNames.includes(item.name) || wanted.has(item.name))
      .map((item) =>
        wanted.has(item.name) ? (contains(item, wanted.get(item.name)) ? item : wanted.get(item.name)!) : item,
      );
  }
  const others = list.filter((item) => !ownedNames.includes(item.name));
  return [...others, ...ours.map((o) => list.find((item) => item.name === o.name && contains(item, o)) ?? o)];
}

/** Kamaji's deployment with our encryption fields merged in, or taken out when `fields` is null. */
export function mergeEncryptionFields(
  deployment: TcpDeployment | undefined,
  fields: EncryptionFields | null,
  cluster: string,
): TcpDeployment {
  const current = deployment ?? {};
  const none = { initContainers: [], volumes: [], apiServerMounts: [], apiServerArgs: [], podAnnotations: {} };
  const f = fields ?? none;
  const annotations = { ...(current.podAdditionalMetadata?.annotations ?? {}) };
  delete annotations[ANNOTATIONS.encryptionConfigHash];
  const next: TcpDeployment = {
    ...current,
    additionalInitContainers: mergeByName(current.additionalInitContainers, f.initContainers, OUR_CONTAINERS),
    additionalVolumes: mergeByName(current.additionalVolumes, f.volumes, OUR_VOLUMES),
    additionalVolumeMounts: {
      ...current.additionalVolumeMounts,
      apiServer: mergeByName(current.additionalVolumeMounts?.apiServer, f.apiServerMounts, OUR_VOLUMES),
    },
    extraArgs: { ...current.extraArgs, apiServer: mergeArgs(current.extraArgs?.apiServer, f.apiServerArgs) },
    podAdditionalMetadata: { ...current.podAdditionalMetadata, annotations: { ...annotations, ...f.podAnnotations } },
  };
  if (fields) next.serviceAccountName = fields.serviceAccountName;
  else if (current.serviceAccountName === clusterNames(cluster).kmsPluginServiceAccount) delete next.serviceAccountName;
  // Secret and projected volumes are group-owned by the pod's fsGroup (0440): without one the
  // non-root plugin could not read its token or CA. Someone else's fsGroup is kept, and the
  // plugin then runs with that group instead.
  const fsGroup = current.podSecurityContext?.fsGroup;
  if (fields && fsGroup === undefined) {
    next.podSecurityContext = { ...current.podSecurityContext, fsGroup: TCP_PATCH.pluginUid };
  } else if (fields && fsGroup !== TCP_PATCH.pluginUid) {
    next.additionalInitContainers = next.additionalInitContainers!.map((c) =>
      KMS_PLUGIN_CONTAINERS.includes(c.name)
        ? { ...c, securityContext: { ...(c.securityContext as object), runAsGroup: fsGroup } }
        : c,
    );
  } else if (!fields && fsGroup === TCP_PATCH.pluginUid) {
    const { fsGroup: _ours, ...rest } = current.podSecurityContext!;
    next.podSecurityContext = rest;
  }
  return pruneEmpty(next);
}

function mergeArgs(current: readonly string[] | undefined, ours: readonly string[]): string[] {
  const list = current ?? [];
  const kept = list.filter((a) => !isOurFlag(a));
  if (kept.length + ours.length === list.length && ours.every((a) => list.includes(a))) return [...list];
  return [...kept, ...ours];
}

/** Empty lists and maps we would otherwise add to an object that never had them. */
function pruneEmpty(deployment: TcpDeployment): TcpDeployment {
  const out: Record<string, unknown> = { ...deployment };
  const emptyObject = (v: unknown) =>
    v !== null &&
    typeof v === 'object' &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => x === undefined || emptyValue(x));
  const emptyValue = (v: unknown): boolean => (Array.isArray(v) ? v.length === 0 : emptyObject(v));
  for (const key of [
    'additionalInitContainers',
    'additionalVolumes',
    'additionalVolumeMounts',
    'extraArgs',
    'podAdditionalMetadata',
    'podSecurityContext',
  ]) {
    const value = out[key];
    if (value !== undefined && emptyValue(value)) delete out[key];
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      out[key] = Object.fromEntries(Object.entries(value).filter(([, v]) => !emptyValue(v)));
    }
  }
  return out;
}
