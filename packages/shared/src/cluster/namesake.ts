import { kdcClusterSpecSchema } from '../api/kdccluster.ts';
import type { KubeObject } from '../runtime/kube.ts';
import { olderNamesake } from './validate.ts';

/** `ClusterFacts.nameTakenBy` from a list of KdcClusters (an informer's cache). */
export async function nameTakenBy(self: KubeObject, clusters: readonly KubeObject[], organizationOf: (namespace: string) => Promise<string | undefined>): Promise<string | undefined> {
  const name = self.metadata?.name;
  const namespace = self.metadata?.namespace;
  if (!name || !namespace) return undefined;
  const namesakes = clusters
    .filter((c) => c.metadata?.name === name && c.metadata?.namespace && c.metadata.namespace !== namespace)
    .map((c) => ({
      namespace: c.metadata!.namespace!,
      name,
      creationTimestamp: c.metadata?.creationTimestamp,
      encrypted: kdcClusterSpecSchema.safeParse(c.spec).data?.encryption?.etcd.enabled === true,
    }));
  if (!namesakes.some((c) => c.encrypted)) return undefined;
  const orgs = new Map<string, string | undefined>();
  for (const ns of [namespace, ...namesakes.map((c) => c.namespace)]) orgs.set(ns, await organizationOf(ns));
  return olderNamesake({ namespace, name, creationTimestamp: self.metadata?.creationTimestamp }, (ns) => orgs.get(ns), namesakes);
}
