import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { controllerMetrics, type ControllerMetrics } from '../metrics.ts';
import type { Cache, Informer, InformerEvent } from './informer.ts';
import { objectKey } from './object-key.ts';
import type { KubeObject } from './kube.ts';
import { WorkQueue, namespaceOfKey, type BackoffOptions, type Priority } from './workqueue.ts';

export interface ReconcileResult {
  /** Reconcile again after this long even if nothing changes (e.g. the next rotation). */
  requeueAfterMs?: number;
}

/**
 * Reconciles one key. `signal` aborts when the controller stops (shutdown, or leadership lost):
 * long work (a migration page loop, a wait) should check it and return early.
 */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconciler;
  workers?: number;
  logger: Logger;
  registry: Registry;
  backoff?: BackoffOptions;
  /** Re-queue every known object this often (a safety net against missed events). */
  resyncMs?: number;
}

/**
 * A thin reconcile loop: informers feed keys into a work queue; workers call the reconciler;
 * errors back off per key; results may ask for a timed requeue. Only runs while started, so a
 * leader-elected process starts it on election and stops it on loss.
 */
export class Controller {
  readonly name: string;
  readonly queue: WorkQueue<string>;
  private readonly options: ControllerOptions;
  private readonly metrics: ControllerMetrics;
  private readonly primaries: { cache: Cache<KubeObject>; owns: (object: KubeObject) => boolean }[] = [];
  private running: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private abort = new AbortController();

  constructor(options: ControllerOptions) {
    this.options = options;
    this.name = options.name;
    // Round-robin over namespaces: a tenant with hundreds of busy objects cannot starve the others.
    this.queue = new WorkQueue<string>(options.backoff, namespaceOfKey);
    this.metrics = controllerMetrics(options.registry);
  }

  /**
   * Every event of the primary resource enqueues its own key; with `owns`, only the objects this
   * instance is responsible for (a shard), on events, at start and at every resync alike.
   */
  watchPrimary<T extends KubeObject>(informer: Informer<T>, owns: (object: T) => boolean = () => true): this {
    this.primaries.push({ cache: informer, owns: owns as (object: KubeObject) => boolean });
    informer.on((_event, object) => {
      if (owns(object)) this.enqueue(objectKey(object));
    });
    return this;
  }

  /** Events of a secondary resource enqueue the primary keys it maps to. */
  watchSecondary<T extends KubeObject>(
    informer: Informer<T>,
    toKeys: (object: T, event: InformerEvent) => string[],
  ): this {
    informer.on((event, object) => toKeys(object, event).forEach((key) => this.enqueue(key)));
    return this;
  }

  enqueue(key: string, priority: Priority = 'normal'): void {
    if (!this.started) return;
    this.queue.add(key, priority);
    this.updateQueueGauges();
  }

  private updateQueueGauges(): void {
    const labels = { controller: this.name };
    this.metrics.queueDepth.set(labels, this.queue.length);
    const groups = this.queue.waitingGroups;
    this.metrics.queueNamespaces.set(labels, groups.waiting);
    this.metrics.queueLargestNamespace.set(labels, groups.largest);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    for (const { cache, owns } of this.primaries)
      for (const object of cache.list()) if (owns(object)) this.queue.add(objectKey(object), 'low');
    const workers = this.options.workers ?? 2;
    this.running = Array.from({ length: workers }, () => this.worker());
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => {
        for (const { cache, owns } of this.primaries) {
          for (const object of cache.list()) {
            if (!owns(object)) continue;
            const key = objectKey(object);
            // A key backing off after failures keeps its backoff: a resync must not defeat it.
            if (this.queue.numRequeues(key) === 0) this.enqueue(key, 'low');
          }
        }
      }, this.options.resyncMs);
      this.resyncTimer.unref?.();
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === null) return;
      this.updateQueueGauges();
      const end = this.metrics.reconcileDuration.startTimer({ controller: this.name });
      try {
        const result = await this.options.reconcile(key, this.abort.signal);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.inc({ controller: this.name, result: 'requeue' });
        } else {
          this.metrics.reconciles.inc({ controller: this.name, result: 'success' });
        }
      } catch (error) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconciles.inc({ controller: this.name, result: 'error' });
        this.options.logger.warn(
          { controller: this.name, key, retryInMs: delay, err: (error as Error).message },
          'reconcile failed',
        );
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  /** Stops taking work, signals in-flight reconciles to return, and waits for them. */
  async stop(): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.abort.abort(new Error(`controller ${this.name} stopping`));
    this.queue.shutDown();
    await Promise.all(this.running);
    this.started = false;
  }
}
