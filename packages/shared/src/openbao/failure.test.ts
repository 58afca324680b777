import { describe, expect, it } from 'vitest';
import { OpenBaoError } from './errors.ts';
import { OpenBaoTokenRejectedError, openBaoFailure } from './failure.ts';

const error = (status: number, errors: string[] = []) =>
  new OpenBaoError({ status, errors, path: 'transit/keys/acme.web', method: 'GET' });
const rejected = new OpenBaoTokenRejectedError({
  status: 403,
  errors: ['permission denied'],
  path: 'sys/mounts',
  method: 'GET',
  rejection: {
    why: 'its TTL ran out (it expired)',
    replace: 'the Secret kube-dc-system/kdc-openbao-token (key token)',
  },
});

describe('openBaoFailure', () => {
  it.each<[string, OpenBaoError, string, RegExp, boolean]>([
    [
      'unreachable',
      error(0, ['ECONNREFUSED']),
      'OpenBaoUnavailable',
      /^OpenBao is unreachable; retrying with backoff$/,
      false,
    ],
    ['sealed', error(503, ['Vault is sealed']), 'OpenBaoSealed', /sealed.*retrying with backoff/, false],
    [
      'the token itself refused',
      rejected,
      'OpenBaoTokenRejected',
      /^the encryption-reconciler's OpenBao token was refused \(403\): its TTL ran out \(it expired\); put a valid token with the controller policy into the Secret kube-dc-system\/kdc-openbao-token \(key token\)/,
      true,
    ],
    [
      'a valid token without the capability',
      error(403, ['permission denied']),
      'OpenBaoPermissionDenied',
      /GET transit\/keys\/acme\.web: 403 permission denied: .*policy does not allow this; give the token the policy in charts\/kdc-encryption\/files\/encryption-reconciler-policy\.hcl/,
      true,
    ],
    ['anything else', error(400, ['bad request']), 'OpenBaoError', /400 bad request; retrying with backoff$/, false],
  ])('%s -> %s', (_name, input, reason, message, credentials) => {
    const failure = openBaoFailure(input);
    expect(failure.reason).toBe(reason);
    expect(failure.message).toMatch(message);
    expect(failure.credentials).toBe(credentials);
  });

  it('a token rejection is still an OpenBaoError of kind denied (callers branching on kind keep working)', () => {
    expect(rejected).toBeInstanceOf(OpenBaoError);
    expect(rejected.kind).toBe('denied');
  });

  it('caps the message at 1000 characters', () => {
    expect(openBaoFailure(error(400, ['x'.repeat(5000)])).message).toHaveLength(1000);
  });
});
