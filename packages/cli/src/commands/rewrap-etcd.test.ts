import { describe, expect, it } from 'vitest';
import { rewrapProgress } from './rewrap-etcd.ts';

const requested = '2026-12-01T10:00:00Z';
const coverage = (c: Record<string, unknown>) => ({
  encryption: {
    coverage: { total: 100, current: 100, stale: 0, plaintext: 0, scannedAt: '2026-12-01T10:05:00Z', ...c },
  },
});

describe('rewrapProgress', () => {
  it('a running migration: objects, percent, pass, resource', () => {
    expect(
      rewrapProgress(
        {
          encryption: {
            migration: {
              reason: 'rewrap',
              startedAt: requested,
              pass: 2,
              resource: 'secrets',
              rewritten: 150,
              total: 100,
            },
          },
        },
        requested,
      ),
    ).toEqual({ done: false, rewritten: 150, total: 100, line: 'rewrapping: 150/100 objects (100%), pass 2, secrets' });
    expect(
      rewrapProgress(
        { encryption: { migration: { reason: 'rewrap', startedAt: requested, pass: 1, rewritten: 25, total: 100 } } },
        requested,
      ).line,
    ).toBe('rewrapping: 25/100 objects (25%), verifying');
  });
  it('done only on a clean scan newer than the request', () => {
    expect(rewrapProgress(coverage({}), requested)).toEqual({
      done: true,
      line: 'done: all 100 rows are under the current key_id (scanned 2026-12-01T10:05:00Z)',
    });
    expect(rewrapProgress(coverage({ scannedAt: '2026-12-01T09:00:00Z' }), requested).done).toBe(false);
    expect(rewrapProgress(coverage({ stale: 4, current: 96 }), requested)).toEqual({
      done: false,
      line: '4 of 100 rows still to re-write (scanned 2026-12-01T10:05:00Z)',
    });
  });
});
