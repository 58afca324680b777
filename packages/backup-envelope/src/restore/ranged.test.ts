import { describe, expect, it } from 'vitest';
import { rangePlan } from './ranged.ts';

const MIB = 1024 * 1024;

describe('rangePlan: what the ranged restore holds, from sizes the key check already authenticated', () => {
  it.each([
    // segment size, plaintext size -> segments per range, buffers, bytes per buffer
    ['1 MiB segments, 100 MiB', MIB, 100 * MIB, { perRange: 3, buffers: 5, bufferBytes: 3 * (MIB + 16), ranges: 34 }],
    [
      'a small snapshot holds only what it needs',
      MIB,
      3 * MIB,
      { perRange: 3, buffers: 5, bufferBytes: 3 * (MIB + 16), ranges: 1 },
    ],
    [
      '64 MiB segments: two buffers, not five',
      64 * MIB,
      512 * MIB,
      { perRange: 1, buffers: 2, bufferBytes: 64 * MIB + 16, ranges: 8 },
    ],
    ['16-byte segments', 16, 1000, { perRange: 131_072, buffers: 5, bufferBytes: 63 * 32, ranges: 1 }],
  ])('%s', (_, segmentSize, plaintextSize, expected) => {
    const plan = rangePlan(segmentSize, plaintextSize);
    expect(plan).toMatchObject(expected);
    expect(plan.buffers * plan.bufferBytes).toBeLessThanOrEqual(Math.max(20 * MIB, 2 * plan.bufferBytes));
  });
});
