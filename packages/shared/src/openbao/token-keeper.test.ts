import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../runtime/workqueue.ts';
import { rejectionReason, renewalCapped, renewalDelayMs, tokenSourceHint } from './token-keeper.ts';

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
