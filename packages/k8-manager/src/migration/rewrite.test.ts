import { describe, expect, it } from 'vitest';
import { Pacer } from './rewrite.ts';

describe('Pacer', () => {
  it('lets a second worth through at once, then holds the rate', async () => {
    const pacer = new Pacer(50);
    const started = performance.now();
    for (let i = 0; i < 50; i++) await pacer.take();
    expect(performance.now() - started).toBeLessThan(150);
    for (let i = 0; i < 25; i++) await pacer.take();
    // 25 more at 50/s take about half a second.
    expect(performance.now() - started).toBeGreaterThan(400);
  });
});
