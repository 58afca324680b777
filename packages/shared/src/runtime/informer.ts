import { ListWatch, Watch, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type KubeClient, type KubeObject, type ResourceRef, type TypedRef, resourcePath } from './kube.ts';
import { backoffDelay } from './workqueue.ts';
import { ObjectIndex } from './object-index.ts';

export { objectKey, splitKey } from './object-key.ts';

/** What a reconcile reads from an informer: its cache, never its event stream (covariant in T). */
export type Cache<T extends KubeObject> = Pick<Informer<T>, 'get' | 'list'>;

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, object: T) => void;

export interface InformerOptions {
  labelSelector?: string;
  logger?: Logger;
  watchTiming?: WatchTiming;
  /**
   * What the cache keeps of each listed or watched object (client-go's SetTransform); default: all
   * but managedFields. It must keep metadata.name, namespace and resourceVersion.
   */
  transform?: (object: KubeObject) => KubeObject;
}

/**
 * An informer-backed cache of one resource: list, then watch from the list's resourceVersion,
 * with client-node's ListWatch doing the bookkeeping. ListWatch stops on errors; we restart it
 * with exponential backoff so a temporarily unreachable apiserver never kills a controller.
 */
export class Informer<T extends KubeObject> {
  private readonly listWatch: ListWatch<KubernetesObject>;
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly indexes: ObjectIndex<T>[] = [];
  private failures = 0;
  private stopped = false;
  private synced = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly syncWaiters: (() => void)[] = [];
  readonly ref: ResourceRef;

  constructor(client: KubeClient, ref: TypedRef<T>, options: InformerOptions = {}) {
    this.ref = ref;
    const path = resourcePath(ref);
    const keep = options.transform ?? withoutManagedFields;
    const listFn = async () => {
      const list = await client.list<KubeObject>(
        ref,
        options.labelSelector ? { labelSelector: options.labelSelector } : {},
      );
      list.items = list.items.map((item) => keep(item));
      return list as unknown as { metadata: { resourceVersion?: string }; items: KubernetesObject[] };
    };
    this.listWatch = new ListWatch<KubernetesObject>(
      path,
      new CacheWatch(client.config, options.watchTiming ?? WATCH_TIMING, keep),
      listFn,
      false,
      options.labelSelector,
    );
    this.listWatch.on('add', (o) => this.emit('add', o as T));
    this.listWatch.on('update', (o) => this.emit('update', o as T));
    this.listWatch.on('delete', (o) => this.emit('delete', o as T));
    this.listWatch.on('error', (err) => {
      if (this.stopped) return;
      const delay = backoffDelay(this.failures++, { baseDelayMs: 500, maxDelayMs: 30_000 });
      options.logger?.warn(
        { resource: path, retryInMs: delay, err: err instanceof Error ? err.message : String(err) },
        'watch failed; restarting',
      );
      this.restartTimer = setTimeout(() => void this.run(), delay);
    });
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** An index over this cache, current before any handler hears of an event (so mappers may read it). */
  index(valueOf: (object: T) => string | undefined): ObjectIndex<T> {
    const index = new ObjectIndex(valueOf);
    for (const object of this.list()) index.apply('add', object);
    this.indexes.push(index);
    return index;
  }

  private emit(event: InformerEvent, object: T): void {
    for (const index of this.indexes) index.apply(event, object);
    for (const handler of this.handlers) handler(event, object);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    await this.listWatch.start();
    // start() returns after the list and watch are established (or after an error was emitted).
    if (this.listWatch.latestResourceVersion()) {
      this.failures = 0;
      if (!this.synced) {
        this.synced = true;
        for (const waiter of this.syncWaiters.splice(0)) waiter();
      }
    }
  }

  start(): void {
    void this.run();
  }

  /** Resolves once the first list has landed in the cache. */
  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.listWatch.get(name, namespace) as T | undefined;
  }

  list(namespace?: string): T[] {
    return this.listWatch.list(namespace) as T[];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.listWatch.stop();
  }
}

/**
 * What the cache keeps of an object. managedFields record the apiserver's field ownership: nothing
 * here reads them, they are often the larger part of an object, and a PUT that omits them leaves
 * them as they are (controller-runtime's TransformStripManagedFields).
 */
export function withoutManagedFields<T extends KubeObject>(object: T): T {
  if (!object?.metadata?.managedFields) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/**
 * For a transform that keeps a slim view: the object's identity (name, namespace, resourceVersion,
 * uid) and only the labels named, none of the rest of its metadata.
 */
export function identityWithLabels(
  object: KubeObject,
  labelKeys: readonly string[],
): NonNullable<KubeObject['metadata']> {
  const { name, namespace, resourceVersion, uid, labels } = object.metadata ?? {};
  const kept = Object.entries(labels ?? {}).filter(([key]) => labelKeys.includes(key));
  return {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    resourceVersion,
    uid,
    ...(kept.length ? { labels: Object.fromEntries(kept) } : {}),
  };
}

/** How long a watch lives and how long it may stay silent (Informer options; defaults below). */
export interface WatchTiming {
  /** The server ends each watch after this many seconds, picked at random in [min, 2 * min). */
  minTimeoutSeconds: number;
  /** A watch that received nothing (not even a bookmark) for this long is taken as dead. */
  inactivityMs: number;
}

/**
 * client-go's reflector: the server ends a watch after 5-10 minutes (random, so watches do not all
 * renew at once), and bookmarks (about one a minute from the watch cache) keep a quiet one alive and
 * its resourceVersion fresh. client-node's own watch instead gives up on any stream quiet for 30 s:
 * every informer on a quiet resource reconnected, with a new TLS handshake, twice a minute (an idle
 * controller opened a connection every few seconds; none in a minute now). 150 s of silence is two
 * and a half missed bookmarks: the connection is dead (or the server sends no bookmarks), and the
 * watch starts again from its resourceVersion.
 */
export const WATCH_TIMING: WatchTiming = { minTimeoutSeconds: 300, inactivityMs: 150_000 };

/** The watch events that carry an object of the resource (ERROR carries a Status, BOOKMARK only a resourceVersion). */
const OBJECT_PHASES = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** A Watch whose events reach the ListWatch's store as the cache keeps them, on client-go's timing. */
class CacheWatch extends Watch {
  private readonly timing: WatchTiming;
  private readonly keep: (object: KubeObject) => KubeObject;
  constructor(
    config: ConstructorParameters<typeof Watch>[0],
    timing: WatchTiming,
    keep: (object: KubeObject) => KubeObject,
  ) {
    super(config);
    this.timing = timing;
    this.keep = keep;
    // client-node's field (private in its types; informer.test.ts fails if it stops being read),
    // counted from the request (the answer's headers must come within it too) and again from each
    // chunk received.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = timing.inactivityMs;
  }

  override watch(...[path, query, callback, done]: Parameters<Watch['watch']>): ReturnType<Watch['watch']> {
    const timeoutSeconds = Math.floor(this.timing.minTimeoutSeconds * (1 + Math.random()));
    return super.watch(
      path,
      { ...query, timeoutSeconds, allowWatchBookmarks: true },
      (phase, object: unknown, raw: unknown) =>
        callback(phase, OBJECT_PHASES.has(phase) && object ? this.keep(object as KubeObject) : object, raw),
      done,
    );
  }
}
