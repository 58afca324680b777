import { describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, backoffDelay, WorkQueue } from './workqueue.ts';

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

  it('addAfter keeps the earliest due time', async () => {
    const q = new WorkQueue();
    q.addAfter('a', 5_000);
    q.addAfter('a', 10);
    const started = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a delay beyond setTimeout\'s 24.8-day limit waits, instead of firing at once (a 30-day rotation)', () => {
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
