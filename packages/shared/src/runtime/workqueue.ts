// A work queue in the shape of client-go's: a key is queued at most once, a key being processed
// is never handed to a second worker (re-adds wait until done), failures back off
// exponentially per key, and delayed adds keep only the earliest due time. Unlike client-go's
// FIFO, ready keys may be served round-robin across groups (tenant namespaces): one tenant with
// hundreds of busy objects then delays every other tenant by at most one key per turn.
// Two priorities, as controller-runtime's priority queue has them: keys added by the initial list
// and by a resync sweep wait behind keys something happened to (an event, a requeue), and a
// waiting key that gets such an add moves up. A resync of thousands of objects then no longer
// delays a new tenant's first reconcile by a whole sweep.

export interface BackoffOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 5, maxDelayMs: 300_000 };

/** Delay before the n-th retry (n starts at 0): base * 2^n, capped. */
export function backoffDelay(failures: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  return Math.min(options.baseDelayMs * 2 ** Math.min(failures, 40), options.maxDelayMs);
}

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Ready keys, in the order workers get them. */
interface ReadyKeys<K> {
  push(key: K): void;
  shift(): K | undefined;
  /** Takes a waiting key out of turn (it moves to another priority). */
  remove(key: K): void;
  clear(): void;
  readonly length: number;
  /** Groups with keys waiting, and the most keys one group has waiting (fair order only). */
  readonly groups: { waiting: number; largest: number };
}

class FifoKeys<K> implements ReadyKeys<K> {
  private readonly keys: K[] = [];
  push(key: K): void {
    this.keys.push(key);
  }
  shift(): K | undefined {
    return this.keys.shift();
  }
  remove(key: K): void {
    const index = this.keys.indexOf(key);
    if (index >= 0) this.keys.splice(index, 1);
  }
  clear(): void {
    this.keys.length = 0;
  }
  get length(): number {
    return this.keys.length;
  }
  get groups() {
    return { waiting: this.keys.length ? 1 : 0, largest: this.keys.length };
  }
}

/** Round-robin over groups, FIFO within a group. */
export class FairKeys<K> implements ReadyKeys<K> {
  private readonly byGroup = new Map<string, K[]>();
  /** Groups with waiting keys, in turn order. */
  private readonly turns: string[] = [];
  private size = 0;
  private readonly groupOf: (key: K) => string;

  constructor(groupOf: (key: K) => string) {
    this.groupOf = groupOf;
  }

  push(key: K): void {
    const group = this.groupOf(key);
    let keys = this.byGroup.get(group);
    if (!keys) {
      keys = [];
      this.byGroup.set(group, keys);
      this.turns.push(group);
    }
    keys.push(key);
    this.size++;
  }

  shift(): K | undefined {
    const group = this.turns.shift();
    if (group === undefined) return undefined;
    const keys = this.byGroup.get(group)!;
    const key = keys.shift()!;
    if (keys.length) this.turns.push(group);
    else this.byGroup.delete(group);
    this.size--;
    return key;
  }

  remove(key: K): void {
    const group = this.groupOf(key);
    const keys = this.byGroup.get(group);
    const index = keys?.indexOf(key) ?? -1;
    if (!keys || index < 0) return;
    keys.splice(index, 1);
    this.size--;
    if (keys.length) return;
    this.byGroup.delete(group);
    this.turns.splice(this.turns.indexOf(group), 1);
  }

  clear(): void {
    this.byGroup.clear();
    this.turns.length = 0;
    this.size = 0;
  }

  get length(): number {
    return this.size;
  }

  get groups() {
    let largest = 0;
    for (const keys of this.byGroup.values()) largest = Math.max(largest, keys.length);
    return { waiting: this.byGroup.size, largest };
  }
}

/** The namespace part of a `namespace/name` key (cluster-scoped keys form one group). */
export const namespaceOfKey = (key: string): string => {
  const slash = key.indexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
};

/** Normal: something happened to the object. Low: a sweep (initial list, resync) found it. */
export type Priority = 'normal' | 'low';

export class WorkQueue<K = string> {
  private readonly queue: ReadyKeys<K>;
  /** Keys only a sweep asked for, served when `queue` is empty. */
  private readonly background: ReadyKeys<K>;
  /** Keys waiting in `background`, and keys being processed whose only re-adds were low. */
  private readonly low = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: ((key: K | null) => void)[] = [];
  private readonly timers = new Map<K, { due: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private shuttingDown = false;
  private readonly backoff: BackoffOptions;

  /** `fairBy`: serve ready keys round-robin across the groups it names (e.g. namespaceOfKey). */
  constructor(backoff: BackoffOptions = DEFAULT_BACKOFF, fairBy?: (key: K) => string) {
    this.backoff = backoff;
    this.queue = fairBy ? new FairKeys(fairBy) : new FifoKeys();
    this.background = fairBy ? new FairKeys(fairBy) : new FifoKeys();
  }

  add(key: K, priority: Priority = 'normal'): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      // Already waiting: a normal add moves a key a sweep queued up to the normal keys.
      if (priority === 'low' || !this.low.delete(key)) return;
      if (!this.processing.has(key)) {
        this.background.remove(key);
        this.queue.push(key);
      }
      return;
    }
    this.dirty.add(key);
    if (priority === 'low') this.low.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.low.delete(key);
      this.processing.add(key);
      waiter(key);
    } else if (priority === 'low') {
      this.background.push(key);
    } else {
      this.queue.push(key);
    }
  }

  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const due = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    // setTimeout fires after 1 ms for anything above 2^31-1 ms (24.8 days): a 30-day rotation
    // would become a hot loop. Far deadlines wake up at the cap and are asked again.
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        if (due > Date.now() + 1000) this.addAfter(key, due - Date.now());
        else this.add(key);
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    timer.unref?.();
    this.timers.set(key, { due, timer });
  }

  addRateLimited(key: K): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = backoffDelay(failures, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves with the next key, or null once the queue is shut down and drained. */
  get(): Promise<K | null> {
    const key = this.queue.shift() ?? this.background.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.low.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key, this.low.delete(key) ? 'low' : 'normal');
    }
  }

  get length(): number {
    return this.queue.length + this.background.length;
  }

  /** Keys waiting that only a sweep asked for. */
  get lowPriorityLength(): number {
    return this.background.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  /** How many groups have keys waiting (at least: the larger of the two priorities' counts), and the largest group's count. */
  get waitingGroups(): { waiting: number; largest: number } {
    const [a, b] = [this.queue.groups, this.background.groups];
    return { waiting: Math.max(a.waiting, b.waiting), largest: Math.max(a.largest, b.largest) };
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.clear();
    this.background.clear();
    this.low.clear();
    this.dirty.clear();
    for (const waiter of this.waiters.splice(0)) waiter(null);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}
