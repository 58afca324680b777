// Every name the platform gives to a thing lives here, so that controllers, the CLI, the chart
// and the tests agree on them (SPEC 3.1-3.5).

export const KDC_GROUP = 'k8s.kube-dc.com';
export const SECURITY_GROUP = 'security.kube-dc.com';
export const API_VERSION = 'v1alpha1';
export const KDC_API_VERSION = `${KDC_GROUP}/${API_VERSION}`;
export const KMSKEY_API_VERSION = `${SECURITY_GROUP}/${API_VERSION}`;
export const KAMAJI_GROUP = 'kamaji.clastix.io';
export const KAMAJI_API_VERSION = `${KAMAJI_GROUP}/v1alpha1`;

export const KDC_CLUSTER = {
  kind: 'KdcCluster',
  plural: 'kdcclusters',
  singular: 'kdccluster',
  shortNames: ['kdc-cl'],
} as const;
export const KMS_KEY = { kind: 'KMSKey', plural: 'kmskeys', singular: 'kmskey', shortNames: ['kkey'] } as const;
export const TENANT_CONTROL_PLANE = { kind: 'TenantControlPlane', plural: 'tenantcontrolplanes' } as const;

export const LABELS = {
  organization: 'kube-dc.com/organization',
  kdcCluster: 'k8s.kube-dc.com/kdccluster',
  managedBy: 'security.kube-dc.com/managed-by',
  kamajiName: 'kamaji.clastix.io/name',
} as const;
export const MANAGED_BY_KDCCLUSTER = 'kdccluster';

export const ANNOTATIONS = {
  forceDisableConfirmed: 'security.kube-dc.com/encryption-force-disable-confirmed',
  allowSharedEtcdKey: 'security.kube-dc.com/allow-shared-etcd-key',
  restoreFrom: 'kube-dc.com/restore-from',
  /** `kubectl kdc rewrap-etcd`: re-write every row now (RFC 3339 of the request). */
  rewrapRequested: 'kube-dc.com/rewrap-requested',
  restoreState: 'kube-dc.com/restore-state',
  /** Why a running restore will end Failed (`<Reason>: <detail>`), kept while it brings the tenant back up. */
  restoreFailure: 'kube-dc.com/restore-failure',
  /** When the current restore state was entered (RFC 3339), shown; the controller keeps its own in status.restore. */
  restoreStateSince: 'kube-dc.com/restore-state-since',
  /** Set to the same key as restore-from: a person confirms restoring a plaintext `.db` that nothing authenticates. */
  restoreUnauthenticatedConfirmed: 'kube-dc.com/restore-unauthenticated-confirmed',
  /** On a DataStore (platform-owned): the project namespaces that may use it, comma-separated, or `*`. */
  allowedNamespaces: 'kube-dc.com/allowed-namespaces',
  /** On a DataStore: the StatefulSet (in the cluster's namespace) that runs its etcd; restore stops and starts it. */
  etcdStatefulSet: 'kube-dc.com/etcd-statefulset',
  encryptionConfigHash: 'security.kube-dc.com/encryption-config-hash',
  /** On objects k8-manager replaces whole (the backup CronJob): a hash of what it wrote, so apiserver defaults never cause a rewrite. */
  specHash: 'kube-dc.com/spec-hash',
  /** On a KMSKey: the purpose its Transit key was created for (a purpose never changes). */
  boundPurpose: 'security.kube-dc.com/purpose',
} as const;

export const FINALIZERS = {
  kmsKey: 'security.kube-dc.com/kmskey',
  /** On a KdcCluster: its OpenBao policies and roles are removed before it goes. */
  openBaoAccess: 'security.kube-dc.com/openbao-access',
} as const;

/** The OpenBao Kubernetes-auth mount the platform configures against the management cluster. */
export const OPENBAO_K8S_AUTH_MOUNT = 'k8s-host';
export const OPENBAO_TRANSIT_MOUNT = 'transit';
export const OPENBAO_AUDIENCE = 'openbao';

export const KMS_PROVIDER_NAME = 'kube-dc-kms-plugin';
/**
 * The KMS v2 provider name a resource's rows are written under (it is in every stored row's
 * prefix). One per resource, all on the one plugin socket: kube-apiserver refuses a name in two
 * entries of its EncryptionConfiguration, and only a resource in an entry of its own can be
 * decrypted while the others stay encrypted. Secrets keep the original name.
 */
export const kmsProviderNameFor = (resource: string, slot: PluginSlot = 'a') => {
  const base = kmsPluginSlot(slot).sharedProviderName;
  return resource === 'secrets' ? base : `${base}-${resource}`;
};
export const KMS_SOCKET_DIR = '/var/run/kmsplugin';
export const KMS_SOCKET_PATH = `${KMS_SOCKET_DIR}/kms.sock`;
export const KMS_ENDPOINT = `unix://${KMS_SOCKET_PATH}`;
export const KMS_STORED_PREFIX = `k8s:enc:kms:v2:${KMS_PROVIDER_NAME}:`;
export const KMS_PLUGIN_CONTAINER = 'kms-plugin';

/**
 * A key change runs two plugin instances side by side (SPEC 5), each with its own Transit key,
 * socket, ports and provider names: slot `a` is the original one (its names are unchanged), `b`
 * the second. A cluster alternates between them from one key change to the next.
 */
export const PLUGIN_SLOTS = ['a', 'b'] as const;
export type PluginSlot = (typeof PLUGIN_SLOTS)[number];

export function kmsPluginSlot(slot: PluginSlot) {
  const suffix = slot === 'a' ? '' : `-${slot}`;
  const socketPath = `${KMS_SOCKET_DIR}/kms${suffix}.sock`;
  return {
    slot,
    container: `${KMS_PLUGIN_CONTAINER}${suffix}`,
    socketPath,
    endpoint: `unix://${socketPath}`,
    /** Loopback only: the plugin's full metrics. */
    metricsPort: slot === 'a' ? 8095 : 8097,
    /** On the pod network: health, readiness and the key version, for kubelet and k8-manager. */
    probePort: slot === 'a' ? 8096 : 8098,
    /** The name of an entry holding several resources (clusters configured before names per resource). */
    sharedProviderName: `${KMS_PROVIDER_NAME}${suffix}`,
  };
}

/** Every KMS v2 provider name the platform may write rows under (both slots, every resource). */
export const allKmsProviderNames = (resources: readonly string[]) =>
  PLUGIN_SLOTS.flatMap((slot) => resources.map((r) => kmsProviderNameFor(r, slot)));
export const KMS_PLUGIN_CONTAINERS: readonly string[] = PLUGIN_SLOTS.map((slot) => kmsPluginSlot(slot).container);
export const DEFAULT_BACKUP_CREDENTIAL_SECRET = 'managed-k8s-backups';

/** The etcd backup CronJob's pod (SPEC 3.3, 6). */
export const BACKUP_JOB = {
  container: 'etcd-backup',
  componentLabel: 'kube-dc.com/component',
  component: 'etcd-backup',
  restoreComponent: 'etcd-restore',
  /** The Kamaji per-TCP Secret with the DataStore client certificate (ca.crt, server.crt, server.key). */
  datastoreCertsSecret: (tenantControlPlane: string) => `${tenantControlPlane}-datastore-certs`,
  etcdCertsVolume: 'etcd-client',
  etcdCertsDir: '/etc/kdc/etcd',
  tokenVolume: 'openbao-token',
  caVolume: 'openbao-ca',
  uid: 65532,
} as const;

/** Names of the objects the platform creates for one KdcCluster (SPEC 3.3). */
export function clusterNames(cluster: string) {
  return {
    tenantControlPlane: `${cluster}-cp`,
    autoEtcdKey: `${cluster}-etcd`,
    kmsPluginServiceAccount: `${cluster}-kms-plugin`,
    encryptionConfigSecret: `${cluster}-encryption-config`,
    backupCronJob: `${cluster}-etcd-backup`,
    backupServiceAccount: `${cluster}-etcd-backup`,
    restoreJob: `${cluster}-etcd-restore`,
  };
}

// Names in OpenBao are shared by every project of an organisation (one OpenBao namespace), so each
// must be producible by exactly one (project namespace, object) pair. A namespace is a DNS label and
// never holds a dot, so `<namespace>.<name>` is injective; the first scheme, `<namespace>-<name>`,
// gave acme-shop/prod-web-etcd and acme-shop-prod/web-etcd one Transit key. The legacy names are
// only read: the controllers migrate what they find under them (docs/formats.md).

/** The Transit key created for a KMSKey: `<projectNS>.<kmskey>`. */
export function transitKeyName(projectNamespace: string, kmsKey: string): string {
  return `${projectNamespace}.${kmsKey}`;
}

/** The first scheme, `<projectNS>-<kmskey>`: not injective; existing keys keep it once their owner is proven. */
export function legacyTransitKeyName(projectNamespace: string, kmsKey: string): string {
  return `${projectNamespace}-${kmsKey}`;
}

/** What either naming scheme can produce: lowercase DNS characters, no path separators, no `..`. */
const TRANSIT_KEY_NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/**
 * The Transit key a KMSKey resolved to, from its `status.keyId` (`[<org>/]transit/keys/<name>`).
 * Status is tenant-writable: anything that is not a name one of our schemes produces (a path,
 * `..`, another mount) is no answer at all.
 */
export function transitKeyFromKeyId(keyId: string | undefined): string | undefined {
  const marker = `${OPENBAO_TRANSIT_MOUNT}/keys/`;
  const at = keyId?.lastIndexOf(marker) ?? -1;
  const name = at >= 0 ? keyId!.slice(at + marker.length) : '';
  return TRANSIT_KEY_NAME.test(name) && !name.includes('..') && name.length <= 512 ? name : undefined;
}

/**
 * The Transit key behind a KMSKey as k8-manager and the CLI use it: what the KMSKey controller
 * resolved (a migrated key keeps its legacy name), else the name it would create. Status is only
 * a hint here: the OpenBao policies that grant a key come from the ownership registry.
 */
export function kmsKeyTransitName(projectNamespace: string, kmsKey: string, keyId?: string): string {
  return transitKeyFromKeyId(keyId) ?? transitKeyName(projectNamespace, kmsKey);
}

/** The OpenBao ACL policies and Kubernetes-auth roles of one cluster (SPEC 3.3, scoped by namespace). */
export function openBaoAccessNames(projectNamespace: string, cluster: string) {
  const scoped = `${projectNamespace}.${cluster}`;
  return {
    pluginPolicy: `tcp-${scoped}`,
    pluginRole: `tcp-${scoped}`,
    backupPolicy: `backup-${scoped}`,
    backupRole: `backup-${scoped}`,
  };
}

/** The first, per-organisation names (`tcp-<cluster>`): deleted during migration when bound to this namespace. */
export function legacyOpenBaoAccessNames(cluster: string): ReturnType<typeof openBaoAccessNames> {
  return {
    pluginPolicy: `tcp-${cluster}`,
    pluginRole: `tcp-${cluster}`,
    backupPolicy: `backup-${cluster}`,
    backupRole: `backup-${cluster}`,
  };
}

/** `status.keyId` of a KMSKey: `<org>/transit/keys/<name>`; the root namespace has no org prefix. */
export function kmsKeyId(organization: string | undefined, transitKey: string): string {
  const path = `${OPENBAO_TRANSIT_MOUNT}/keys/${transitKey}`;
  return organization ? `${organization}/${path}` : path;
}

export function defaultBackupBucket(projectNamespace: string): string {
  return `${projectNamespace}-managed-k8s-backups`;
}

export function defaultBackupDestination(projectNamespace: string, cluster: string): string {
  return `s3://${defaultBackupBucket(projectNamespace)}/${cluster}/`;
}

/**
 * What the TenantControlPlane patch adds (SPEC 3.5). Every name carries a `kdc-` prefix so it
 * can never collide with Kamaji's own containers, volumes or paths, and so the merge can tell
 * ours from everybody else's.
 */
export const TCP_PATCH = {
  socketInitContainer: 'kdc-kms-socket-init',
  pluginContainer: KMS_PLUGIN_CONTAINER,
  socketVolume: 'kdc-kms-socket',
  encryptionConfigVolume: 'kdc-encryption-config',
  tokenVolume: 'kdc-openbao-token',
  caVolume: 'kdc-openbao-ca',
  encryptionConfigDir: '/etc/kubernetes/kdc-encryption',
  encryptionConfigKey: 'encryption-config.yaml',
  caKey: 'openbao-ca.crt',
  tokenDir: '/var/run/secrets/openbao',
  tokenFile: 'token',
  caDir: '/etc/kdc/openbao-ca',
  pluginUid: 65532,
  /** Loopback only: the plugin's full metrics. */
  pluginMetricsPort: 8095,
  /** On the pod network: health, readiness and the key version, for kubelet and k8-manager. */
  pluginProbePort: 8096,
  encryptionProviderFlag: '--encryption-provider-config',
} as const;
export const ENCRYPTION_CONFIG_PATH = `${TCP_PATCH.encryptionConfigDir}/${TCP_PATCH.encryptionConfigKey}`;
