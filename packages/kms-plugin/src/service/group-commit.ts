import type { BatchItemResult } from '@kdc/shared';

// Group commit for Transit calls. Calls leave at the end of the event-loop turn in which they
// arrived (setImmediate runs after the I/O poll phase), so every request the gRPC server parsed
// in that turn goes in one Transit batch; a lone call waits only for that turn (microseconds).
// While `maxInFlight` batches are running, later calls wait and leave together. Under load this
// turns N HTTP round trips, N token lookups and 2N audit records into one of each.
// At most `maxQueued` calls wait: beyond that a call fails at once (QueueFullError), so a stalled
// OpenBao cannot make the plugin hoard calls. A call whose deadline passed while it waited is
// failed (DeadlineExceededError) and never sent: nobody is left to read its answer.

export class BatchItemError extends Error {}
export class QueueFullError extends Error {}
export class DeadlineExceededError extends Error {}

interface Waiter<In, Out> {
  item: In;
  /** Epoch ms; Infinity for none. */
  deadline: number;
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  maxBatch: number;
  maxInFlight: number;
  maxQueued: number;
}

export class GroupCommit<In, Out> {
  private readonly queue: Waiter<In, Out>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly run: (items: In[]) => Promise<BatchItemResult<Out>[]>;
  private readonly options: GroupCommitOptions;
  /** Sizes of the batches sent, for metrics. */
  onBatch?: (size: number) => void;

  constructor(run: (items: In[]) => Promise<BatchItemResult<Out>[]>, options: GroupCommitOptions) {
    this.run = run;
    this.options = options;
  }

  /** Calls waiting to be sent (not those in flight). */
  get queued(): number {
    return this.queue.length;
  }

  submit(item: In, deadline = Infinity): Promise<Out> {
    if (this.queue.length >= this.options.maxQueued) {
      // Only when full: expired waiters must not hold places live calls could take.
      this.dropExpired(Date.now());
      if (this.queue.length >= this.options.maxQueued)
        return Promise.reject(new QueueFullError(`${this.queue.length} calls are already waiting for OpenBao`));
    }
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, deadline, resolve, reject });
      this.schedule();
    });
  }

  private dropExpired(now: number): void {
    let kept = 0;
    for (const w of this.queue) {
      if (w.deadline <= now)
        w.reject(new DeadlineExceededError('the deadline passed before the call was sent to OpenBao'));
      else this.queue[kept++] = w;
    }
    this.queue.length = kept;
  }

  /** Up to maxBatch live waiters from the front; the expired ones met on the way are failed. */
  private take(now: number): Waiter<In, Out>[] {
    const batch: Waiter<In, Out>[] = [];
    let i = 0;
    for (; i < this.queue.length && batch.length < this.options.maxBatch; i++) {
      const w = this.queue[i]!;
      if (w.deadline <= now)
        w.reject(new DeadlineExceededError('the deadline passed before the call was sent to OpenBao'));
      else batch.push(w);
    }
    this.queue.splice(0, i);
    return batch;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const now = Date.now();
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.take(now);
      if (batch.length === 0) continue;
      this.inFlight++;
      this.onBatch?.(batch.length);
      this.run(batch.map((w) => w.item))
        .then(
          (results) =>
            batch.forEach((w, i) => {
              const result = results[i];
              if (!result) w.reject(new BatchItemError('OpenBao returned fewer batch results than items'));
              else if (result.ok) w.resolve(result.value);
              else w.reject(new BatchItemError(result.error));
            }),
          (error: unknown) => batch.forEach((w) => w.reject(error)),
        )
        .finally(() => {
          this.inFlight--;
          this.schedule();
        });
    }
  }
}
