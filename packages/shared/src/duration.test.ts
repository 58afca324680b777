import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseKmsKeyInterval } from './duration.ts';

describe('parseDuration (KdcCluster grammar: d h m s)', () => {
  it.each([
    ['90d', 90 * 86_400],
    ['7d', 7 * 86_400],
    ['1d12h', 86_400 + 12 * 3_600],
    ['36h', 36 * 3_600],
    ['1h30m', 5_400],
    ['45s', 45],
    ['2d3h4m5s', 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5],
    [' 10d ', 10 * 86_400],
  ])('%s = %i seconds', (input, seconds) => {
    expect(parseDuration(input)).toEqual({ ok: true, seconds });
  });

  it.each([
    ['2w', /unit "w".*not allowed/],
    ['90', /cannot read/],
    ['', /empty interval/],
    ['d', /cannot read/],
    ['1h1d', /largest first/],
    ['1d1d', /largest first/],
    ['1.5d', /cannot read|not allowed/],
    ['-1d', /cannot read/],
    ['100ms', /unit "ms".*not allowed/],
    ['1y', /unit "y"/],
  ])('refuses %j with an actionable message', (input, message) => {
    const result = parseDuration(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(message);
  });
});

describe('parseKmsKeyInterval (also sub-second units)', () => {
  it('accepts the KMSKey examples', () => {
    expect(parseKmsKeyInterval('2160h')).toEqual({ ok: true, seconds: 2160 * 3600 });
    expect(parseKmsKeyInterval('1s500ms')).toEqual({ ok: true, seconds: 1.5 });
    expect(parseKmsKeyInterval('45s').ok).toBe(true);
  });
  it('still refuses weeks', () => {
    expect(parseKmsKeyInterval('1w').ok).toBe(false);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [90_061, '1d1h1m1s'],
    [7 * 86_400, '7d'],
  ])('%i -> %s', (seconds, text) => expect(formatDuration(seconds)).toBe(text));

  it('round-trips through parseDuration', () => {
    for (const seconds of [1, 59, 3_600, 86_399, 730 * 86_400]) {
      expect(parseDuration(formatDuration(seconds))).toEqual({ ok: true, seconds });
    }
  });
});
