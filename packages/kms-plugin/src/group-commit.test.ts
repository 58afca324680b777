import { describe, expect, it } from 'vitest';
import { BatchItemError, GroupCommit } from './group-commit.ts';

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
    const gc = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      const gate = deferred();
      gates.push(gate);
      await gate.promise;
      return items.map((i) => ({ ok: true as const, value: i * 10 }));
    }, { maxBatch: 3, maxInFlight: 1 });
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
    const gc = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      return items.map((i) => ({ ok: true as const, value: i }));
    }, { maxBatch: 128, maxInFlight: 4 });
    await Promise.all(Array.from({ length: 10 }, (_, i) => gc.submit(i)));
    expect(batches).toEqual([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
  });

  it('fails one item without failing its neighbours, and a whole batch on a call error', async () => {
    const gc = new GroupCommit<number, number>(async (items) => {
      if (items.includes(99)) throw new Error('unreachable');
      return items.map((i) => (i < 0 ? { ok: false as const, error: 'bad item' } : { ok: true as const, value: i }));
    }, { maxBatch: 10, maxInFlight: 1 });
    const results = await Promise.allSettled([gc.submit(1), gc.submit(-1), gc.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(BatchItemError);
    await expect(gc.submit(99)).rejects.toThrow('unreachable');
  });

  it('never exceeds maxInFlight', async () => {
    let running = 0;
    let peak = 0;
    const gc = new GroupCommit<number, number>(async (items) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return items.map((i) => ({ ok: true as const, value: i }));
    }, { maxBatch: 2, maxInFlight: 2 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => gc.submit(i)));
    expect(peak).toBe(2);
  });
});
