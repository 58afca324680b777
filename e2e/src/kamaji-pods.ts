// The bare-Pod half of the local runner: what the scheduler and a kubelet do for a Pod nobody
// owns and no node was chosen for (`helm test` creates one). The runner binds it to its node
// (the Binding subresource, as the scheduler does), runs it generically (kamaji-pod.ts), writes
// its status as a kubelet does, and stops it when the Pod object goes.
import { type Informer, at, RESOURCES } from '@kdc/shared';
import type { PodObject, PodRuntime } from './kamaji-pod.ts';
import { findIn, runPodToEnd, watchAll, type WorkloadRunnerDeps } from './kamaji-workloads.ts';

const POD = (namespace?: string) => at(RESOURCES.pod, namespace);

export class LocalPodRunner {
  private readonly deps: WorkloadRunnerDeps;
  private informers: Informer<PodObject>[] = [];
  private readonly running = new Map<string, { runtime?: PodRuntime; done: Promise<void> }>();
  private stopping = false;

  constructor(deps: WorkloadRunnerDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.informers = await watchAll<PodObject>(this.deps.kube, POD, this.deps.namespaces, (pod) => this.consider(pod));
  }

  private consider(pod: PodObject): void {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const entry = this.running.get(key);
    const meta = pod.metadata as PodObject['metadata'] & { deletionTimestamp?: string; ownerReferences?: unknown[] };
    if (meta.deletionTimestamp || !this.exists(pod)) {
      void entry?.runtime?.stop(2000);
      return;
    }
    // Pods of our Jobs, StatefulSets and Deployments come bound to the node; others are not ours to run.
    if (this.stopping || entry || pod.spec.nodeName || meta.ownerReferences?.length) return;
    const started: { runtime?: PodRuntime; done: Promise<void> } = { done: Promise.resolve() };
    this.running.set(key, started);
    started.done = this.run(pod, started).catch((error: unknown) =>
      this.deps.log('pod run failed', { pod: key, error: String((error as Error)?.message ?? error) }),
    );
  }

  private exists(pod: PodObject): boolean {
    return findIn(this.informers, `${pod.metadata.namespace}/${pod.metadata.name}`) !== undefined;
  }

  private async run(pod: PodObject, entry: { runtime?: PodRuntime }): Promise<void> {
    const { kube } = this.deps;
    const { namespace, name } = pod.metadata;
    await this.deps.prepareNamespace(namespace, pod.spec.serviceAccountName);
    await kube.post(
      { ...at(RESOURCES.pod, namespace, name), subresource: 'binding' },
      {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name },
        target: { apiVersion: 'v1', kind: 'Node', name: this.deps.nodeName },
      },
    );
    const bound = await kube.get<PodObject>(at(RESOURCES.pod, namespace, name));
    this.deps.log('pod bound and started', { pod: `${namespace}/${name}` });
    // restartPolicy Always never ends by itself: it runs until its object goes or the runner stops.
    const phase = await runPodToEnd(this.deps, bound, entry, () => this.stopping);
    this.deps.log('pod finished', { pod: `${namespace}/${name}`, phase });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(
      [...this.running.values()].map(async (e) => {
        await e.runtime?.stop(2000);
        await e.done;
      }),
    );
  }
}
