import { describe, expect, it } from 'vitest';
import {
  callBudgetMs,
  decide,
  microTime,
  observe,
  validateLeaderTimings,
  writeStillFresh,
  type LeaseRecord,
  type Observation,
} from './leader.ts';

const HOUR = 3_600_000;
const wall = new Date('2026-05-01T10:00:00.123Z');
const at = (offsetMs: number) => microTime(new Date(wall.getTime() + offsetMs));
const other = (renewOffsetMs: number, leaseDurationSeconds = 15): LeaseRecord => ({
  holderIdentity: 'other',
  leaseDurationSeconds,
  renewTime: at(renewOffsetMs),
  leaseTransitions: 3,
});

describe('observe', () => {
  const first = observe(undefined, other(0), 1_000);
  it.each<[string, Observation | undefined, LeaseRecord, number, number]>([
    ['first sight starts the clock', undefined, other(0), 1_000, 1_000],
    ['an unchanged record keeps the time it was first seen', first, other(0), 9_000, 1_000],
    ['a new renewTime restarts the clock', first, other(2_000), 9_000, 9_000],
    // A renewTime an hour in the past is still a change: the holder is alive.
    ['a renewTime written by a clock an hour behind is a change too', first, other(-HOUR), 9_000, 9_000],
    ['another holder restarts the clock', first, { ...other(0), holderIdentity: 'third' }, 9_000, 9_000],
    ['a changed lease duration restarts the clock', first, other(0, 30), 9_000, 9_000],
  ])('%s', (_name, previous, record, now, observedAt) => {
    expect(observe(previous, record, now).observedAt).toBe(observedAt);
  });
});

describe('decide', () => {
  const seen = (record: LeaseRecord, observedAt: number) => observe(undefined, record, observedAt);
  it.each<[string, Observation, number, ReturnType<typeof decide>]>([
    ['held by us: renew', seen({ ...other(0), holderIdentity: 'me' }, 0), 100_000, { kind: 'renew' }],
    [
      'released (empty holder): acquire at once',
      seen({ holderIdentity: '', leaseDurationSeconds: 1 }, 0),
      0,
      { kind: 'acquire', why: 'released' },
    ],
    ['no holder field: acquire', seen({}, 0), 0, { kind: 'acquire', why: 'released' }],
    [
      'another holder, seen 5 s ago: wait 10 s more',
      seen(other(0), 0),
      5_000,
      { kind: 'wait', holder: 'other', expiresInMs: 10_000 },
    ],
    [
      'another holder, unchanged for exactly the lease: acquire',
      seen(other(0), 0),
      15_000,
      { kind: 'acquire', why: 'expired' },
    ],
    ['another holder, unchanged for 16 s: acquire', seen(other(0), 0), 16_000, { kind: 'acquire', why: 'expired' }],
    // The two clock-skew attacks: renewTime is never compared with our clock.
    [
      'a holder whose clock is an hour behind, just renewed: wait',
      seen(other(-HOUR), 50_000),
      50_000,
      { kind: 'wait', holder: 'other', expiresInMs: 15_000 },
    ],
    [
      'a holder whose clock is an hour ahead, silent for 15 s: acquire',
      seen(other(HOUR), 0),
      15_000,
      { kind: 'acquire', why: 'expired' },
    ],
    [
      "the record's own lease duration counts, not ours",
      seen(other(0, 40), 0),
      30_000,
      { kind: 'wait', holder: 'other', expiresInMs: 10_000 },
    ],
    [
      'a record without a duration gets our default',
      seen({ holderIdentity: 'other' }, 0),
      14_000,
      { kind: 'wait', holder: 'other', expiresInMs: 1_000 },
    ],
  ])('%s', (_name, observation, now, expected) => {
    expect(decide(observation, 'me', now, 15)).toEqual(expected);
  });
});

describe('callBudgetMs', () => {
  it.each([
    [
      'a candidate gets one renew deadline',
      { leading: false, renewedAt: 0, now: 50_000, renewDeadlineMs: 10_000 },
      10_000,
    ],
    [
      'a leader that renewed 2 s ago has 8 s left',
      { leading: true, renewedAt: 1_000, now: 3_000, renewDeadlineMs: 10_000 },
      8_000,
    ],
    [
      'a leader past its deadline has none',
      { leading: true, renewedAt: 1_000, now: 12_000, renewDeadlineMs: 10_000 },
      0,
    ],
    // Monotonic times are fractional; AbortSignal.timeout throws on a fraction.
    [
      'whole milliseconds, rounded down',
      { leading: true, renewedAt: 1_000.75, now: 3_000.5, renewDeadlineMs: 10_000 },
      8_000,
    ],
  ])('%s', (_name, input, expected) => {
    expect(callBudgetMs(input)).toBe(expected);
    expect(() => AbortSignal.timeout(callBudgetMs(input))).not.toThrow();
  });
});

describe('writeStillFresh', () => {
  it.each([
    [0, 9_999, true],
    [0, 10_000, false],
    [5_000, 30_000, false],
  ])('sent %i, answered %i -> %s', (sentAt, now, expected) => {
    expect(writeStillFresh(sentAt, now, 10_000)).toBe(expected);
  });
});

describe('validateLeaderTimings', () => {
  it.each([
    ['client-go defaults', { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 }, []],
    [
      'renew deadline not below the lease',
      { leaseDurationSeconds: 10, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 },
      ['leaseDurationSeconds must be greater than renewDeadlineSeconds'],
    ],
    [
      'retry too close to the renew deadline',
      { leaseDurationSeconds: 15, renewDeadlineSeconds: 2.4, retryPeriodSeconds: 2 },
      ['renewDeadlineSeconds must be greater than retryPeriodSeconds * 1.2'],
    ],
    [
      'zero retry',
      { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 0 },
      ['retryPeriodSeconds must be greater than zero'],
    ],
  ])('%s', (_name, timings, expected) => {
    expect(validateLeaderTimings(timings)).toEqual(expected);
  });
});

describe('microTime', () => {
  it('has exactly six fractional digits', () => {
    expect(microTime(wall)).toBe('2026-05-01T10:00:00.123000Z');
  });
});
