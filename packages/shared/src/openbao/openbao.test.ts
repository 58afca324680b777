import { describe, expect, it } from 'vitest';
import { errorKind, OpenBaoError } from './errors.ts';
import { parsePolicy, policiesEquivalent, renderPolicy } from './policy.ts';
import { ciphertextVersion } from './transit.ts';

describe('ciphertextVersion', () => {
  it.each([
    ['vault:v1:abc', 1],
    ['vault:v42:abc', 42],
    ['vault:abc', null],
    ['k8s:enc:kms:v2:x', null],
    ['', null],
  ])('%s -> %s', (ct, version) => expect(ciphertextVersion(ct)).toBe(version));
});

describe('errors', () => {
  it('classifies HTTP statuses', () => {
    expect([0, 400, 403, 404, 429, 500, 503].map(errorKind)).toEqual([
      'unavailable',
      'invalid',
      'denied',
      'not_found',
      'rate_limited',
      'server',
      'sealed',
    ]);
  });
  it('says what failed without leaking request bodies', () => {
    const e = new OpenBaoError({
      status: 403,
      errors: ['permission denied'],
      path: 'transit/keys/k/rotate',
      method: 'POST',
    });
    expect(e.message).toBe('OpenBao POST transit/keys/k/rotate: 403 permission denied');
    expect(e.kind).toBe('denied');
  });
});

describe('policies', () => {
  const rules = [
    { path: 'transit/encrypt/k', capabilities: ['update' as const] },
    { path: 'auth/token/lookup-self', capabilities: ['read' as const] },
  ];
  it('round-trips through HCL', () => {
    expect(parsePolicy(renderPolicy(rules))).toEqual(rules);
  });
  it('compares semantically, not textually', () => {
    const reordered = `path "auth/token/lookup-self" { capabilities = ["read"] }\n\npath "transit/encrypt/k" {\n capabilities = ["update"]\n}`;
    expect(policiesEquivalent(renderPolicy(rules), reordered)).toBe(true);
    expect(policiesEquivalent(renderPolicy(rules), reordered.replace('"update"', '"update", "create"'))).toBe(false);
  });
});
