import type { BatchItemResult } from '@kdc/shared';

// Group commit for Transit calls. Calls leave at the end of the event-loop turn in which they
// arrived (setImmediate runs after the I/O poll phase), so every request the gRPC server parsed
// in that turn goes in one Transit batch; a lone call waits only for that turn (microseconds).
// While `maxInFlight` batches are running, later calls wait and leave together. Under load this
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
  private scheduled = false;
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
      this.schedule();
    });
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
        this.schedule();
      });
    }
  }
}
