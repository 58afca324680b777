// The scheduler's part for a Pod nobody owns and no node was chosen for (`helm test` creates
// one): it is bound to the local node (the Binding subresource, as the scheduler does) and run
// there to its end; its object going stops it. Pods of our workload controllers come bound to the
// node already, and pods with an owner are not ours to run.
import { at, RESOURCES } from '@kdc/shared';
import type { PodObject } from '../kubelet/pod-spec.ts';
import { Watched, type ControllerContext } from './watch.ts';

export class BarePodController {
  private readonly context: ControllerContext;
  private readonly watched: Watched<PodObject>;
  /** Each pod ever bound here; `deleted` once its object went (a new pod of that name is not run). */
  private readonly running = new Map<string, { deleted: boolean; done: Promise<void> }>();
  private stopping = false;

  constructor(context: ControllerContext) {
    this.context = context;
    this.watched = new Watched<PodObject>(context, {
      name: 'scheduler',
      resource: RESOURCES.pod,
      reconcile: async (key) => this.consider(key),
    });
  }

  start(): Promise<void> {
    return this.watched.start();
  }

  private consider(key: string): void {
    const pod = this.watched.get(key);
    const entry = this.running.get(key);
    if (!pod || pod.metadata.deletionTimestamp) {
      if (entry) entry.deleted = true;
      return;
    }
    if (this.stopping || entry || pod.spec.nodeName || pod.metadata.ownerReferences?.length) return;
    const started = { deleted: false, done: Promise.resolve() };
    this.running.set(key, started);
    started.done = this.run(pod, started).catch((error: unknown) =>
      this.context.logger.info({ pod: key, error: String((error as Error)?.message ?? error) }, 'pod run failed'),
    );
  }

  private async run(pod: PodObject, entry: { deleted: boolean }): Promise<void> {
    const { kube, node, logger } = this.context;
    const { namespace, name } = pod.metadata;
    await node.prepareNamespace(namespace, pod.spec.serviceAccountName);
    await kube.post(
      { ...at(RESOURCES.pod, namespace, name), subresource: 'binding' },
      {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name },
        target: { apiVersion: 'v1', kind: 'Node', name: node.name },
      },
    );
    const bound = await kube.get<PodObject>(at(RESOURCES.pod, namespace, name));
    logger.info({ pod: `${namespace}/${name}` }, 'pod bound and started');
    // restartPolicy Always never ends by itself: it runs until its object goes or the runner stops.
    const phase = await node.runToEnd(bound, () => this.stopping || entry.deleted, { group: 'pods' });
    logger.info({ pod: `${namespace}/${name}`, phase }, 'pod finished');
  }

  /** Running pods stop with a last phase Failed. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.watched.stop();
    await Promise.all([...this.running.values()].map((e) => e.done));
  }
}
