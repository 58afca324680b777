import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_BACKOFF, MAX_TIMER_MS, backoffDelay, WorkQueue, FairKeys, namespaceOfKey } from './workqueue.ts';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('deduplicates keys that are waiting', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key being processed to a second worker; a re-add runs after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    let second: string | null | undefined;
    void q.get().then((k) => (second = k));
    await tick();
    expect(second).toBeUndefined();
    q.done(key!);
    await tick();
    expect(second).toBe('a');
  });

  it('keys a sweep added (low priority) wait behind keys something happened to, whatever the order', async () => {
    const q = new WorkQueue();
    q.add('swept-1', 'low');
    q.add('swept-2', 'low');
    q.add('event');
    expect(q.length).toBe(3);
    expect(q.lowPriorityLength).toBe(2);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['event', 'swept-1', 'swept-2']);
  });

  it('a swept key that gets an event moves up once, and is never served twice', async () => {
    const q = new WorkQueue();
    for (const k of ['s1', 's2', 's3']) q.add(k, 'low');
    q.add('s3');
    q.add('s3', 'low'); // a later sweep does not move it back down
    expect(q.length).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['s3', 's1', 's2']);
    expect(q.length).toBe(0);
  });

  it('a key re-added while processing keeps the highest priority it was asked with', async () => {
    const q = new WorkQueue();
    q.add('a');
    const a = await q.get();
    q.add('a', 'low');
    q.add('b', 'low');
    q.done(a!);
    // Only a sweep asked again: it joins the low keys after b.
    expect([await q.get(), await q.get()]).toEqual(['b', 'a']);
    q.done('b');
    q.done('a');
    q.add('a');
    const again = await q.get();
    q.add('a', 'low');
    q.add('a'); // an event during processing: normal after done
    q.add('c', 'low');
    q.done(again!);
    expect([await q.get(), await q.get()]).toEqual(['a', 'c']);
  });

  it('fair order holds within each priority', async () => {
    const q = new WorkQueue(DEFAULT_BACKOFF, namespaceOfKey);
    for (const k of ['t1/a', 't1/b', 't1/c', 't2/a']) q.add(k, 'low');
    q.add('t1/c'); // moves up, out of t1's low turn
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await q.get())!);
    expect(order).toEqual(['t1/c', 't1/a', 't2/a', 't1/b']);
  });

  it('addAfter keeps the earliest due time', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 5_000);
    q.addAfter('a', 10);
    const started = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("a delay beyond setTimeout's 24.8-day limit waits, instead of firing at once (a 30-day rotation)", () => {
    vi.useFakeTimers();
    try {
      const q = new WorkQueue();
      const thirtyDays = 30 * 86_400_000;
      q.addAfter('key', thirtyDays);
      vi.advanceTimersByTime(60_000);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(MAX_TIMER_MS);
      expect(q.length).toBe(0);
      vi.advanceTimersByTime(thirtyDays - MAX_TIMER_MS - 60_000 + 1);
      expect(q.length).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('backs off exponentially per key and forget resets', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 1_000 });
    expect([q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')]).toEqual([10, 20, 40]);
    expect(q.numRequeues('a')).toBe(3);
    q.forget('a');
    expect(q.addRateLimited('a')).toBe(10);
    q.shutDown();
  });

  it('caps the backoff', () => {
    expect(backoffDelay(100, { baseDelayMs: 5, maxDelayMs: 300_000 })).toBe(300_000);
  });

  it('shutDown releases waiting workers with null', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeNull();
    q.add('x');
    expect(await q.get()).toBeNull();
  });
});

describe('WorkQueue with fair order (per namespace)', () => {
  const drain = async (q: WorkQueue<string>, n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const key = (await q.get())!;
      out.push(key);
      q.done(key);
    }
    return out;
  };

  it('a namespace with many keys gets one turn in each round, not the whole queue', async () => {
    const q = new WorkQueue<string>(undefined, namespaceOfKey);
    for (let i = 0; i < 200; i++) q.add(`noisy/k${i}`);
    q.add('quiet/a');
    q.add('other/b');
    expect(q.waitingGroups).toEqual({ waiting: 3, largest: 200 });
    // FIFO would hand out 200 noisy keys before quiet/a.
    expect(await drain(q, 3)).toEqual(['noisy/k0', 'quiet/a', 'other/b']);
    expect(await drain(q, 2)).toEqual(['noisy/k1', 'noisy/k2']);
    expect(q.waitingGroups).toEqual({ waiting: 1, largest: 197 });
    q.shutDown();
  });

  it('keeps the client-go rules: one entry per key, never a key to two workers', async () => {
    const q = new WorkQueue<string>(undefined, namespaceOfKey);
    q.add('a/x');
    q.add('a/x');
    q.add('b/y');
    const first = (await q.get())!;
    q.add(first); // re-added while processing: waits until done
    expect(await q.get()).toBe('b/y');
    expect(q.length).toBe(0);
    q.done(first);
    expect(await q.get()).toBe('a/x');
    q.shutDown();
  });

  it('FairKeys alone: round robin, FIFO within a group', () => {
    const keys = new FairKeys<string>(namespaceOfKey);
    for (const k of ['a/1', 'a/2', 'b/1', 'a/3', 'c/1', 'b/2']) keys.push(k);
    const order: string[] = [];
    for (let k = keys.shift(); k !== undefined; k = keys.shift()) order.push(k);
    expect(order).toEqual(['a/1', 'b/1', 'c/1', 'a/2', 'b/2', 'a/3']);
    expect(keys.length).toBe(0);
  });
});
