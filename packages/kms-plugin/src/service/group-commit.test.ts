import { describe, expect, it } from 'vitest';
import { BatchItemError, DeadlineExceededError, GroupCommit, QueueFullError } from './group-commit.ts';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('GroupCommit', () => {
  const turn = () => new Promise((r) => setImmediate(r));
  // Lets promise callbacks and the scheduled send run.
  const settle = async () => {
    for (let i = 0; i < 3; i++) await turn();
  };

  it('sends the calls of one event-loop turn as one batch, and batches what arrives while the pipe is full', async () => {
    const gates: ReturnType<typeof deferred>[] = [];
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        const gate = deferred();
        gates.push(gate);
        await gate.promise;
        return items.map((i) => ({ ok: true as const, value: i * 10 }));
      },
      { maxBatch: 3, maxInFlight: 1, maxQueued: 100 },
    );
    const lone = gc.submit(1);
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1]]);
    const rest = [2, 3, 4, 5].map((i) => gc.submit(i));
    await turn();
    expect(batches).toEqual([[1]]);
    gates[0]!.resolve();
    expect(await lone).toBe(10);
    await settle();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    gates[1]!.resolve();
    await settle();
    expect(batches).toEqual([[1], [2, 3, 4], [5]]);
    gates[2]!.resolve();
    expect(await Promise.all(rest)).toEqual([20, 30, 40, 50]);
  });

  it('sends calls that arrive in the same turn together even when the pipe has room', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((i) => ({ ok: true as const, value: i }));
      },
      { maxBatch: 128, maxInFlight: 4, maxQueued: 100 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(i)));
    expect(batches).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('fails one item without failing its neighbours, and a whole batch on a call error', async () => {
    const gc = new GroupCommit<number, number>(
      async (items) => {
        if (items.includes(99)) throw new Error('unreachable');
        return items.map((i) => (i < 0 ? { ok: false as const, error: 'bad item' } : { ok: true as const, value: i }));
      },
      { maxBatch: 10, maxInFlight: 1, maxQueued: 100 },
    );
    const results = await Promise.allSettled([gc.submit(1), gc.submit(-1), gc.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(BatchItemError);
    await expect(gc.submit(99)).rejects.toThrow('unreachable');
  });

  it('never exceeds maxInFlight', async () => {
    let running = 0;
    let peak = 0;
    const gc = new GroupCommit<number, number>(
      async (items) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return items.map((i) => ({ ok: true as const, value: i }));
      },
      { maxBatch: 2, maxInFlight: 2, maxQueued: 100 },
    );
    await Promise.all(Array.from({ length: 20 }, (_, i) => gc.submit(i)));
    expect(peak).toBe(2);
  });

  /** A GroupCommit whose sends wait for `release()`; `batches` records what was sent. */
  function stalled(options: { maxBatch: number; maxInFlight: number; maxQueued: number }) {
    const batches: number[][] = [];
    const gates: ReturnType<typeof deferred>[] = [];
    const gc = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      return items.map((i) => ({ ok: true as const, value: i }));
    }, options);
    return { gc, batches, release: () => gates.forEach((g) => g.resolve()) };
  }

  it('fails a call at once when maxQueued calls already wait, and takes calls again once the queue drains', async () => {
    const { gc, batches, release } = stalled({ maxBatch: 2, maxInFlight: 1, maxQueued: 3 });
    const first = gc.submit(0);
    await turn();
    expect(batches).toEqual([[0]]);
    const waiting = [1, 2, 3].map((i) => gc.submit(i));
    expect(gc.queued).toBe(3);
    await expect(gc.submit(4)).rejects.toBeInstanceOf(QueueFullError);
    expect(gc.queued).toBe(3);
    release();
    await settle();
    release();
    await settle();
    release();
    expect(await Promise.all([first, ...waiting])).toEqual([0, 1, 2, 3]);
    expect(batches).toEqual([[0], [1, 2], [3]]);
    const later = gc.submit(5);
    await settle();
    release();
    expect(await later).toBe(5);
  });

  it('never sends a call whose deadline passed while it waited, and sends the live ones around it', async () => {
    const { gc, batches, release } = stalled({ maxBatch: 10, maxInFlight: 1, maxQueued: 100 });
    const first = gc.submit(0);
    await turn();
    const now = Date.now();
    const expiring = gc.submit(1, now + 20);
    const live = gc.submit(2, now + 60_000);
    const alsoExpiring = gc.submit(3, now + 20);
    await new Promise((r) => setTimeout(r, 40));
    release();
    await expect(expiring).rejects.toBeInstanceOf(DeadlineExceededError);
    await expect(alsoExpiring).rejects.toBeInstanceOf(DeadlineExceededError);
    await settle();
    release();
    expect(await Promise.all([first, live])).toEqual([0, 2]);
    expect(batches).toEqual([[0], [2]]);
  });

  it('makes room in a full queue by failing the expired waiters first', async () => {
    const { gc, release } = stalled({ maxBatch: 10, maxInFlight: 1, maxQueued: 2 });
    const first = gc.submit(0);
    await turn();
    const expired = [gc.submit(1, Date.now() + 10), gc.submit(2, Date.now() + 10)];
    await new Promise((r) => setTimeout(r, 20));
    const fresh = gc.submit(3);
    for (const e of expired) await expect(e).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(gc.queued).toBe(1);
    release();
    await settle();
    release();
    expect(await Promise.all([first, fresh])).toEqual([0, 3]);
  });
});
