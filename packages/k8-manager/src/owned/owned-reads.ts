// What k8-manager reads of the objects it makes for a cluster: the plugin and backup
// ServiceAccounts, the backup CronJob and its Jobs. A steady resync used to read each of them from
// the apiserver on every reconcile (most of a steady reconcile's cost); now they come from caches
// selected by the cluster label (and a shard's labels), as controller-runtime's Owns() does.
//
// A label-selected cache cannot see an object that exists without the labels (made before the
// release was sharded, by hand, by a tenant under our name), so it is trusted per object only
// after a direct read found the same thing it holds, and trust in a namespace ends with any write
// of ours to these kinds there and with any delete the caches hear of: the next read is direct.
import {
  ANNOTATIONS,
  BACKUP_JOB,
  LABELS,
  RESOURCES,
  at,
  identityWithLabels,
  type Cache,
  type KubeClient,
  type KubeObject,
  type ObjectIndex,
  type ResourceRef,
} from '@kdc/shared';
import type { Job } from '../backup/jobs.ts';

export type OwnedKind = 'serviceAccount' | 'cronJob';

/** The resources whose objects OwnedReads answers for: a write to one of them ends trust in its namespace. */
export const OWNED_RESOURCES = [RESOURCES.serviceAccount, RESOURCES.cronJob, RESOURCES.job] as const;

/** The label selector of the owned caches: ours (the cluster label), and the shard's when sharded. */
export const ownedSelector = (shardSelector: string | undefined): string =>
  shardSelector ? `${LABELS.kdcCluster},${shardSelector}` : LABELS.kdcCluster;

/** What reads of owned objects need; `directReads` for callers without caches. */
export interface OwnedReader {
  get(kind: OwnedKind, namespace: string, name: string): Promise<KubeObject | null>;
  /** The cluster's backup Jobs (its cluster and component labels). */
  backupJobs(namespace: string, cluster: string): Promise<Job[]>;
}

/**
 * What a cache keeps of an owned object: its identity, our two labels, the spec hash we wrote,
 * its timestamps, and a Job's outcome. A CronJob's pod template stays in the apiserver.
 */
export function ownedView(object: KubeObject): KubeObject {
  const { creationTimestamp, deletionTimestamp, annotations } = object.metadata ?? {};
  const hash = annotations?.[ANNOTATIONS.specHash];
  const status = (object as Job).status;
  return {
    metadata: {
      ...identityWithLabels(object, [LABELS.kdcCluster, BACKUP_JOB.componentLabel]),
      ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
      ...(deletionTimestamp !== undefined ? { deletionTimestamp } : {}),
      ...(hash !== undefined ? { annotations: { [ANNOTATIONS.specHash]: hash } } : {}),
    },
    ...(status?.conditions || status?.completionTime
      ? {
          status: {
            ...(status.conditions ? { conditions: status.conditions } : {}),
            ...(status.completionTime ? { completionTime: status.completionTime } : {}),
          },
        }
      : {}),
  };
}

const backupJobSelector = (cluster: string) =>
  `${LABELS.kdcCluster}=${cluster},${BACKUP_JOB.componentLabel}=${BACKUP_JOB.component}`;

/** Every read from the apiserver (tests, and a release without the caches). */
export function directReads(kube: Pick<KubeClient, 'getOrNull' | 'list'>): OwnedReader {
  return {
    get: (kind, namespace, name) => kube.getOrNull(at(RESOURCES[kind], namespace, name)),
    backupJobs: async (namespace, cluster) =>
      (await kube.list<Job>(at(RESOURCES.job, namespace), { labelSelector: backupJobSelector(cluster) })).items,
  };
}

const isOwnedResource = (ref: ResourceRef) =>
  !ref.subresource && OWNED_RESOURCES.some((r) => r.group === ref.group && r.plural === ref.plural);

export interface OwnedCaches {
  serviceAccounts: Cache<KubeObject>;
  cronJobs: Cache<KubeObject>;
  /** The Jobs cache indexed by `namespace/cluster` (their cluster label). */
  jobsByCluster: ObjectIndex<KubeObject>;
}

/** The same objects, in the same versions: what a direct read must show before the cache is believed. */
function sameVersions(direct: readonly KubeObject[], cached: readonly KubeObject[]): boolean {
  const versions = (objects: readonly KubeObject[]) =>
    objects.map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort();
  const [a, b] = [versions(direct), versions(cached)];
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class OwnedReads implements OwnedReader {
  /** Per namespace, the reads (kind/name, or jobs/cluster) the caches answer. */
  private readonly trusted = new Map<string, Set<string>>();
  private readonly direct: OwnedReader;
  private readonly caches: OwnedCaches;
  private readonly counted: (source: 'cache' | 'apiserver') => void;

  constructor(
    kube: Pick<KubeClient, 'getOrNull' | 'list'>,
    caches: OwnedCaches,
    counted: (source: 'cache' | 'apiserver') => void = () => {},
  ) {
    this.direct = directReads(kube);
    this.caches = caches;
    this.counted = counted;
  }

  async get(kind: OwnedKind, namespace: string, name: string): Promise<KubeObject | null> {
    const cache = kind === 'serviceAccount' ? this.caches.serviceAccounts : this.caches.cronJobs;
    const found = await this.readThrough(
      namespace,
      `${kind}/${name}`,
      () => [cache.get(name, namespace)].filter((o) => o !== undefined),
      async () => [await this.direct.get(kind, namespace, name)].filter((o) => o !== null),
    );
    return found[0] ?? null;
  }

  backupJobs(namespace: string, cluster: string): Promise<Job[]> {
    return this.readThrough(
      namespace,
      `jobs/${cluster}`,
      () =>
        this.caches.jobsByCluster
          .get(`${namespace}/${cluster}`)
          .filter((job) => job.metadata?.labels?.[BACKUP_JOB.componentLabel] === BACKUP_JOB.component),
      () => this.direct.backupJobs(namespace, cluster),
    );
  }

  /** KubeClient.onWrite: a write of ours to an owned kind ends trust in its namespace. */
  wrote(ref: ResourceRef): void {
    if (isOwnedResource(ref)) this.forget(ref.namespace);
  }

  /** A write of ours to an owned kind in `namespace`, or a delete a cache heard: read directly there again. */
  forget(namespace: string | undefined): void {
    if (namespace !== undefined) this.trusted.delete(namespace);
  }

  /** The cache's answer once trusted; until then the apiserver's, trusting the cache when they agree. */
  private async readThrough<T extends KubeObject>(
    namespace: string,
    key: string,
    cached: () => T[],
    direct: () => Promise<T[]>,
  ): Promise<T[]> {
    if (this.trusted.get(namespace)?.has(key)) {
      this.counted('cache');
      return cached();
    }
    this.counted('apiserver');
    const answer = await direct();
    if (sameVersions(answer, cached())) this.trust(namespace, key);
    return answer;
  }

  private trust(namespace: string, key: string): void {
    let keys = this.trusted.get(namespace);
    if (!keys) this.trusted.set(namespace, (keys = new Set()));
    keys.add(key);
  }
}
