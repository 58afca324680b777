import { parseKdcClusterSpec, resolveKeyRefs } from '../api/kdccluster.ts';
import { ANNOTATIONS, LABELS } from '../names.ts';
import { identityWithLabels, type Informer } from '../runtime/informer.ts';
import { type KubeClient, type KubeObject } from '../runtime/kube.ts';
import { at, RESOURCES } from '../runtime/resources.ts';
import { isAttached, kamajiControlPlaneOwner, type TcpAttachment } from './attachment.ts';
import { resolvePlatformConfig, type PlatformConfigResult } from './platform-config.ts';
import type { ClusterFacts, KmsKeyView } from './validate.ts';

// What validateCluster needs, gathered from the informer caches the same way in both
// controllers that act on a KdcCluster, so they can never disagree about a spec.

export type OrganizationOf = (namespace: string) => Promise<string | undefined>;

export async function gatherClusterFacts(input: {
  cluster: KubeObject & { spec?: unknown };
  /** The KdcClusters of the cluster's namespace (others are skipped anyway). */
  clusters: readonly KubeObject[];
  /** A KMSKey of the cluster's namespace by name (an informer cache lookup). */
  kmsKey: (name: string) => KubeObject | undefined;
  /** The cluster's TCP (whole, or its tcpAttachmentView), null when there is none. */
  tcp: TcpAttachment | null;
  platform: PlatformConfigResult;
  /** A Kamaji DataStore by name (cluster-scoped; null when it does not exist). */
  dataStoreOf: (name: string) => Promise<KubeObject | null>;
  /** The controller's clock (default: the wall clock). */
  now?: Date;
}): Promise<ClusterFacts> {
  const { cluster, tcp } = input;
  const namespace = cluster.metadata!.namespace!;
  const name = cluster.metadata!.name!;
  // Only neighbours (same namespace) on the etcd key this cluster names matter (KeyRefInUse):
  // OpenBao names are scoped by namespace, so a namesake elsewhere can never collide (names.ts),
  // and a cluster naming no key (the common case) needs no scan. This runs for every cluster on
  // every resync: a scan of every neighbour each time is quadratic in a namespace's clusters.
  const own = parseKdcClusterSpec(cluster.spec);
  const explicit = own.success ? own.data.encryption?.etcd.keyRef : undefined;
  const otherClusters = !explicit
    ? []
    : input.clusters
        .filter((c) => c.metadata?.namespace === namespace && c.metadata?.name !== name)
        .flatMap((c) => {
          const spec = parseKdcClusterSpec(c.spec);
          if (!spec.success || !spec.data.encryption?.etcd.enabled) return [];
          const etcdKeyRef = resolveKeyRefs(c.metadata!.name!, spec.data).etcd;
          return etcdKeyRef === explicit ? [{ name: c.metadata!.name!, etcdKeyRef }] : [];
        });
  const dataStoreName = (cluster.spec as { dataStore?: unknown } | undefined)?.dataStore;
  const dataStore =
    typeof dataStoreName === 'string' && dataStoreName ? await input.dataStoreOf(dataStoreName) : undefined;
  return {
    namespace,
    name,
    spec: cluster.spec,
    annotations: cluster.metadata?.annotations ?? {},
    platform: input.platform,
    // Only the keys the spec names (or the automatic one) are looked at: not every key of the namespace.
    kmsKeys: (own.success
      ? [...new Set(Object.values(resolveKeyRefs(name, own.data)))].flatMap((ref) => input.kmsKey(ref) ?? [])
      : []) as unknown as KmsKeyView[],
    otherClusters,
    kamajiControlPlaneOwner: tcp ? kamajiControlPlaneOwner(tcp) : undefined,
    ...(typeof dataStoreName === 'string' && dataStoreName
      ? {
          dataStore: {
            name: dataStoreName,
            found: Boolean(dataStore),
            allowedNamespaces: dataStore?.metadata?.annotations?.[ANNOTATIONS.allowedNamespaces],
          },
        }
      : {}),
    attached: isAttached(tcp),
    now: input.now ?? new Date(),
  };
}

/** A read through a small time-based cache (namespace labels and master-config change rarely). */
export function cachedLookup<T>(load: (key: string) => Promise<T>, ttlMs: number): (key: string) => Promise<T> {
  const cache = new Map<string, { value: T; at: number }>();
  return async (key) => {
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at < ttlMs) return hit.value;
    const value = await load(key);
    cache.set(key, { value, at: Date.now() });
    return value;
  };
}

/** A Kamaji DataStore by name, read through a short cache (DataStores are the platform's, and change rarely). */
export function dataStoreLookup(kube: KubeClient, ttlMs = 30_000): (name: string) => Promise<KubeObject | null> {
  return cachedLookup((name) => kube.getOrNull<KubeObject>({ ...RESOURCES.dataStore, name }), ttlMs);
}

/**
 * What a controller's Namespace cache keeps (the informer's transform): the name and the
 * organisation label, nothing of the platform's other labels, annotations and status.
 */
export function organizationView(namespace: KubeObject): KubeObject {
  return { metadata: identityWithLabels(namespace, [LABELS.organization]) };
}

/**
 * The organisation (OpenBao namespace) of a project namespace: its `kube-dc.com/organization` label.
 * With the controller's Namespace cache (`namespaces`: a watch, so a changed label is seen at once
 * and a steady resync asks nothing); a namespace the cache has not seen yet is read, not guessed
 * (its KdcCluster's event can come before the Namespace's, and no label would mean the root
 * OpenBao namespace). Without a cache, read through one of `ttlMs`.
 */
export function organizationLookup(
  kube: KubeClient,
  options: { namespaces?: Pick<Informer<KubeObject>, 'get'>; ttlMs?: number } = {},
): OrganizationOf {
  const labelOf = (namespace: KubeObject | null | undefined) =>
    namespace?.metadata?.labels?.[LABELS.organization] || undefined;
  const read = async (namespace: string) =>
    labelOf(await kube.getOrNull<KubeObject>(at(RESOURCES.namespace, undefined, namespace)));
  const { namespaces } = options;
  if (!namespaces) return cachedLookup(read, options.ttlMs ?? 60_000);
  return async (namespace) => {
    const cached = namespaces.get(namespace);
    return cached ? labelOf(cached) : read(namespace);
  };
}

/** Platform prerequisites (SPEC 7) from the environment and the `master-config` Secret, re-read every 30 s. */
export function platformConfigLookup(
  kube: KubeClient,
  namespace: string,
  env: Record<string, string | undefined>,
  ttlMs = 30_000,
): () => Promise<PlatformConfigResult> {
  const lookup = cachedLookup(async () => {
    const secret = await kube.getOrNull<KubeObject & { data?: Record<string, string> }>(
      at(RESOURCES.secret, namespace, 'master-config'),
    );
    return resolvePlatformConfig(env, decodeSecretData(secret) ?? {});
  }, ttlMs);
  return () => lookup('master-config');
}

/** A Secret's data as text; undefined when there is no Secret. */
export function decodeSecretData(
  secret: { data?: Record<string, string> } | null | undefined,
): Record<string, string> | undefined {
  if (!secret) return undefined;
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}
