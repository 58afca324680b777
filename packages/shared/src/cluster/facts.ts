import { kdcClusterSpecSchema, resolveKeyRefs } from '../api/kdccluster.ts';
import type { TenantControlPlane } from '../api/tenantcontrolplane.ts';
import { LABELS } from '../names.ts';
import { CORE, type KubeClient, type KubeObject } from '../runtime/kube.ts';
import { isAttached, kamajiControlPlaneOwner } from './attachment.ts';
import { resolvePlatformConfig, type PlatformConfigResult } from './platform-config.ts';
import { olderNamesake, type ClusterFacts, type KmsKeyView } from './validate.ts';

// What validateCluster needs, gathered from the informer caches the same way in both
// controllers that act on a KdcCluster, so they can never disagree about a spec.

export type OrganizationOf = (namespace: string) => Promise<string | undefined>;

export async function gatherClusterFacts(input: {
  cluster: KubeObject & { spec?: unknown };
  /** Every KdcCluster the controller sees. */
  clusters: readonly KubeObject[];
  /** The KMSKeys of the cluster's namespace. */
  kmsKeys: readonly KubeObject[];
  tcp: TenantControlPlane | null;
  platform: PlatformConfigResult;
  organizationOf: OrganizationOf;
}): Promise<ClusterFacts> {
  const { cluster, tcp } = input;
  const namespace = cluster.metadata!.namespace!;
  const name = cluster.metadata!.name!;
  // Only neighbours (same namespace) and namesakes (same name) matter: filter before parsing,
  // this runs for every cluster on every resync.
  const relevant = input.clusters.filter((c) => (c.metadata?.namespace === namespace) !== (c.metadata?.name === name));
  const encrypted = relevant.flatMap((c) => {
    const spec = kdcClusterSpecSchema.safeParse(c.spec);
    return spec.success && spec.data.encryption?.etcd.enabled ? [{ object: c, namespace: c.metadata!.namespace!, name: c.metadata!.name!, etcdKeyRef: resolveKeyRefs(c.metadata!.name!, spec.data).etcd }] : [];
  });
  return {
    namespace,
    name,
    spec: cluster.spec,
    annotations: cluster.metadata?.annotations ?? {},
    platform: input.platform,
    kmsKeys: input.kmsKeys as unknown as KmsKeyView[],
    otherClusters: encrypted.filter((c) => c.namespace === namespace && c.name !== name).map(({ name: n, etcdKeyRef }) => ({ name: n, etcdKeyRef })),
    kamajiControlPlaneOwner: tcp ? kamajiControlPlaneOwner(tcp) : undefined,
    nameTakenBy: await nameTakenBy(cluster, encrypted.filter((c) => c.name === name && c.namespace !== namespace), input.organizationOf),
    attached: isAttached(tcp),
  };
}

/** `ClusterFacts.nameTakenBy`: the older encrypted namesake in the same organisation, if any. */
async function nameTakenBy(self: KubeObject, namesakes: readonly { object: KubeObject; namespace: string; name: string }[], organizationOf: OrganizationOf): Promise<string | undefined> {
  if (!namesakes.length) return undefined;
  const namespace = self.metadata!.namespace!;
  const orgs = new Map<string, string | undefined>();
  for (const ns of [namespace, ...namesakes.map((c) => c.namespace)]) orgs.set(ns, await organizationOf(ns));
  const candidates = namesakes.map((c) => ({ namespace: c.namespace, name: c.name, creationTimestamp: c.object.metadata?.creationTimestamp, encrypted: true }));
  return olderNamesake({ namespace, name: self.metadata!.name!, creationTimestamp: self.metadata?.creationTimestamp }, (ns) => orgs.get(ns), candidates);
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

/** The organisation (OpenBao namespace) of a project namespace: its `kube-dc.com/organization` label. */
export function organizationLookup(kube: KubeClient, ttlMs = 60_000): OrganizationOf {
  return cachedLookup(async (namespace) => (await kube.getOrNull<KubeObject>(CORE('namespaces', undefined, namespace)))?.metadata?.labels?.[LABELS.organization] || undefined, ttlMs);
}

/** Platform prerequisites (SPEC 7) from the environment and the `master-config` Secret, re-read every 30 s. */
export function platformConfigLookup(kube: KubeClient, namespace: string, env: Record<string, string | undefined>, ttlMs = 30_000): () => Promise<PlatformConfigResult> {
  const lookup = cachedLookup(async () => {
    const secret = await kube.getOrNull<KubeObject & { data?: Record<string, string> }>(CORE('secrets', namespace, 'master-config'));
    return resolvePlatformConfig(env, decodeSecretData(secret) ?? {});
  }, ttlMs);
  return () => lookup('master-config');
}

/** A Secret's data as text; undefined when there is no Secret. */
export function decodeSecretData(secret: { data?: Record<string, string> } | null | undefined): Record<string, string> | undefined {
  if (!secret) return undefined;
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}
