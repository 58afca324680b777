// How every local controller watches and queues: one informer per watched namespace (one for
// all when none is named), synced before the controller starts, feeding a shared-runtime
// Controller (packages/shared/src/runtime: work queue, per-key backoff, no key twice at once).
import {
  at,
  Controller,
  Informer,
  splitKey,
  type ControllerOptions,
  type KubeClient,
  type KubeObject,
  type ReconcileResult,
  type TypedRef,
} from '@kdc/shared';
import type { LocalNode } from '../kubelet/node.ts';

/** What a local controller runs with. */
export interface ControllerContext extends Pick<ControllerOptions, 'logger' | 'registry'> {
  kube: KubeClient;
  node: LocalNode;
  /** Watched namespaces; `[undefined]`: all of them. */
  namespaces: (string | undefined)[];
}

export class Watched<T extends KubeObject> {
  readonly controller: Controller;
  private readonly informers: Informer<T>[];

  constructor(
    context: ControllerContext,
    options: {
      name: string;
      resource: TypedRef<T>;
      reconcile: (key: string) => Promise<ReconcileResult | void>;
      backoff?: ControllerOptions['backoff'];
      /** Reconciles of different objects at once: a reconcile may wait out a pod's grace period. */
      workers?: number;
    },
  ) {
    this.informers = context.namespaces.map((ns) => new Informer<T>(context.kube, at(options.resource, ns)));
    this.controller = new Controller({
      name: options.name,
      reconcile: options.reconcile,
      workers: options.workers ?? 8,
      backoff: options.backoff,
      logger: context.logger,
      registry: context.registry,
    });
    for (const informer of this.informers) this.controller.watchPrimary(informer);
  }

  async start(): Promise<void> {
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.controller.start();
  }

  /** The object `<namespace>/<name>` from whichever namespace's informer has it. */
  get(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    for (const informer of this.informers) {
      const found = informer.get(name, namespace);
      if (found) return found;
    }
    return undefined;
  }

  /** No more events, and no reconcile in flight once it resolves. */
  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.controller.stop();
  }
}
