import { describe, expect, it } from 'vitest';
import { canAcquire, microTime } from './leader.ts';

const now = new Date('2026-05-01T10:00:00.123Z');

describe('canAcquire', () => {
  it.each([
    ['no lease', undefined, true],
    ['empty holder (released)', { holderIdentity: '' }, true],
    ['held by us', { holderIdentity: 'me', renewTime: microTime(now), leaseDurationSeconds: 15 }, true],
    ['held by another, fresh', { holderIdentity: 'other', renewTime: microTime(new Date(now.getTime() - 5_000)), leaseDurationSeconds: 15 }, false],
    ['held by another, expired', { holderIdentity: 'other', renewTime: microTime(new Date(now.getTime() - 16_000)), leaseDurationSeconds: 15 }, true],
  ])('%s -> %s', (_name, spec, expected) => {
    expect(canAcquire(spec, 'me', now)).toBe(expected);
  });
});

describe('microTime', () => {
  it('has exactly six fractional digits', () => {
    expect(microTime(now)).toBe('2026-05-01T10:00:00.123000Z');
  });
});
