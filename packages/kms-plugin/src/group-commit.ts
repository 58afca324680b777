import type { BatchItemResult } from '@kdc/shared';

// Group commit for Transit calls. A call that arrives while fewer than `maxInFlight` batches are
// running leaves at once (alone: no added latency when the load is light); calls that arrive
// while the pipe is full wait and leave together as one Transit batch request. Under load this
// turns N HTTP round trips, N token lookups and 2N audit records into one of each.

export class BatchItemError extends Error {}

interface Waiter<In, Out> {
  item: In;
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

export interface GroupCommitOptions {
  maxBatch: number;
  maxInFlight: number;
}

export class GroupCommit<In, Out> {
  private readonly queue: Waiter<In, Out>[] = [];
  private inFlight = 0;
  private readonly run: (items: In[]) => Promise<BatchItemResult<Out>[]>;
  private readonly options: GroupCommitOptions;
  /** Sizes of the batches sent, for metrics. */
  onBatch?: (size: number) => void;

  constructor(run: (items: In[]) => Promise<BatchItemResult<Out>[]>, options: GroupCommitOptions) {
    this.run = run;
    this.options = options;
  }

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight++;
      this.onBatch?.(batch.length);
      this.run(batch.map((w) => w.item)).then(
        (results) => batch.forEach((w, i) => {
          const result = results[i];
          if (!result) w.reject(new BatchItemError('OpenBao returned fewer batch results than items'));
          else if (result.ok) w.resolve(result.value);
          else w.reject(new BatchItemError(result.error));
        }),
        (error: unknown) => batch.forEach((w) => w.reject(error)),
      ).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }
}
