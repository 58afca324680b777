// A work queue in the shape of client-go's: a key is queued at most once, a key being processed
// is never handed to a second worker (re-adds wait until done), failures back off
// exponentially per key, and delayed adds keep only the earliest due time.

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

export class WorkQueue<K = string> {
  private readonly queue: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiters: ((key: K | null) => void)[] = [];
  private readonly timers = new Map<K, { due: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private shuttingDown = false;
  private readonly backoff: BackoffOptions;

  constructor(backoff: BackoffOptions = DEFAULT_BACKOFF) {
    this.backoff = backoff;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
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
    const timer = setTimeout(() => {
      this.timers.delete(key);
      if (due > Date.now() + 1000) this.addAfter(key, due - Date.now());
      else this.add(key);
    }, Math.min(delayMs, MAX_TIMER_MS));
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
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
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
      this.add(key);
    }
  }

  get length(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const waiter of this.waiters.splice(0)) waiter(null);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }
}
