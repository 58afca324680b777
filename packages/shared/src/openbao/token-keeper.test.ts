import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../runtime/workqueue.ts';
import { rejectionReason, renewalCapped, renewalDelayMs, tokenExpiry, tokenSourceHint } from './token-keeper.ts';

describe('renewalDelayMs', () => {
  it.each([
    ['a token that never expires is not renewed', 0, undefined],
    ['two thirds of the TTL', 30, 20_000],
    ['never sooner than a second', 1, 1_000],
    ['capped at the timer limit', 400 * 86_400, MAX_TIMER_MS],
  ])('%s', (_name, ttl, expected) => {
    expect(renewalDelayMs(ttl)).toBe(expected);
  });
});

describe('renewalCapped', () => {
  it.each([
    [30, 30, false],
    [11, 30, false],
    [9, 30, true],
    [5, 0, false],
  ])('granted %i of %i requested -> %s', (granted, requested, expected) => {
    expect(renewalCapped(granted, requested)).toBe(expected);
  });
});

describe('rejectionReason', () => {
  it.each([
    ['expired', { expiresAt: 1_000, renewalRefused: false, now: 2_000 }, /expired/],
    [
      'expired, even if the last renewal was refused',
      { expiresAt: 1_000, renewalRefused: true, now: 2_000 },
      /expired/,
    ],
    // Whole-second TTLs: an expiry we computed can be a second or so late.
    [
      'refused a second before the expiry we computed',
      { expiresAt: 3_000, renewalRefused: false, now: 2_000 },
      /expired/,
    ],
    ['renewal refused before expiry', { expiresAt: 9_000, renewalRefused: true, now: 2_000 }, /renewal was refused/],
    [
      'refused while valid for a while yet',
      { expiresAt: 9_000, renewalRefused: false, now: 2_000 },
      /^it was revoked$/,
    ],
    [
      'never accepted since start or rotation',
      { expiresAt: undefined, renewalRefused: false, now: 2_000 },
      /does not know it/,
    ],
    ['a token without expiry refused', { expiresAt: null, renewalRefused: false, now: 2_000 }, /^it was revoked$/],
  ])('%s', (_name, input, expected) => {
    expect(rejectionReason(input)).toMatch(expected);
  });
});

describe('tokenExpiry', () => {
  const now = Date.parse('2026-12-06T11:00:00.000Z');
  it.each([
    ["OpenBao's expire_time", { ttlSeconds: 19, expireTime: '2026-12-06T11:00:19.750123456Z', now }, now + 19_750],
    // In its last second a token's ttl reads 0: it still expires, it is not a token without expiry.
    [
      'the last second: ttl 0 with an expire_time',
      { ttlSeconds: 0, expireTime: '2026-12-06T11:00:00.400Z', now },
      now + 400,
    ],
    ['no expire_time: counted from now', { ttlSeconds: 30, expireTime: null, now }, now + 30_000],
    ['a token without expiry', { ttlSeconds: 0, expireTime: null, now }, null],
    ['an unreadable expire_time: the ttl', { ttlSeconds: 5, expireTime: 'soon', now }, now + 5_000],
  ])('%s', (_name, input, expected) => {
    expect(tokenExpiry(input)).toBe(expected);
  });
});

describe('tokenSourceHint', () => {
  it.each([
    [
      {
        OPENBAO_TOKEN_FILE: '/etc/kdc/openbao-token/token',
        OPENBAO_TOKEN_SECRET: 'kube-dc-system/kdc-openbao-token (key token)',
      },
      'the Secret kube-dc-system/kdc-openbao-token (key token)',
    ],
    [{ OPENBAO_TOKEN_FILE: '/run/token' }, 'the token file /run/token'],
    [{ OPENBAO_TOKEN: 's.x', OPENBAO_TOKEN_FILE: '/run/token' }, 'OPENBAO_TOKEN (and restart the controller)'],
  ])('%j -> %s', (env, expected) => {
    expect(tokenSourceHint(env)).toBe(expected);
  });
});
