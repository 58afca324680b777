import { describe, expect, it } from 'vitest';
import { DriftClock } from './drift-clock.ts';

describe('DriftClock', () => {
  const at = (start = 0) => {
    let t = start;
    return { now: () => t, advance: (ms: number) => void (t += ms) };
  };

  it('recalls what it verified for the fingerprint, until the period passes', () => {
    const time = at();
    const clock = new DriftClock<string>(60_000, { now: time.now });
    expect(clock.recall('ns/a', 'f1')).toBeUndefined(); // never verified (a restart starts here)
    clock.remember('ns/a', 'f1', 'seen');
    expect(clock.recall('ns/a', 'f1')).toBe('seen');
    time.advance(59_999);
    expect(clock.recall('ns/a', 'f1')).toBe('seen');
    time.advance(1);
    expect(clock.recall('ns/a', 'f1')).toBeUndefined();
  });

  it('recalls nothing for another fingerprint or another key', () => {
    const clock = new DriftClock(60_000, { now: at().now });
    clock.remember('ns/a', 'f1', true);
    expect(clock.recall('ns/a', 'f2')).toBeUndefined();
    expect(clock.recall('ns/b', 'f1')).toBeUndefined();
    clock.remember('ns/a', 'f2', true);
    expect(clock.recall('ns/a', 'f1')).toBeUndefined();
    expect(clock.recall('ns/a', 'f2')).toBe(true);
  });

  it('forgets a key, and with period 0 recalls nothing', () => {
    const clock = new DriftClock(60_000, { now: at().now });
    clock.remember('ns/a', 'f1', true);
    clock.forget('ns/a');
    expect(clock.recall('ns/a', 'f1')).toBeUndefined();
    const always = new DriftClock(0, { now: at().now });
    always.remember('ns/a', 'f1', true);
    expect(always.recall('ns/a', 'f1')).toBeUndefined();
  });

  it('recalls nothing while it is not trusted (a refused token), and again once it is', () => {
    let trusted = true;
    const clock = new DriftClock(60_000, { now: at().now, trusted: () => trusted });
    clock.remember('ns/a', 'f1', true);
    trusted = false;
    expect(clock.recall('ns/a', 'f1')).toBeUndefined();
    trusted = true;
    expect(clock.recall('ns/a', 'f1')).toBe(true);
  });
});
