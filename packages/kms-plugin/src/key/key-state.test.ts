import { describe, expect, it } from 'vitest';
import type { TransitKey } from '@kdc/shared';
import { keyIdsOf, nextPublished, type KeyIdScheme } from './key-state.ts';
import { keyIdFor, legacyKeyIdFor } from './keyid.ts';

const identity = { namespace: 'acme', mount: 'transit', key: 'acme-dev.c1-etcd' };
const key: TransitKey = {
  name: identity.key,
  type: 'aes256-gcm96',
  latestVersion: 2,
  minDecryptionVersion: 1,
  minEncryptionVersion: 0,
  deletionAllowed: false,
  exportable: false,
  autoRotatePeriodSeconds: 0,
  versions: { 1: 1_765_000_000, 2: 1_766_000_000 },
};
const A = 'https://127.0.0.1:8200';
const B = 'https://localhost:8200';
const scheme = (more: Partial<KeyIdScheme> = {}): KeyIdScheme => ({ identity, publish: 'kdc2', servers: [B], ...more });

describe('keyIdsOf', () => {
  it('publishes the kdc2 id of the latest version, whatever the URL', () => {
    const viaB = keyIdsOf(scheme(), key);
    const viaA = keyIdsOf(scheme({ servers: [A] }), key);
    expect(viaB.latest).toEqual({ keyId: keyIdFor(identity, 2, 1_766_000_000), version: 2 });
    expect(viaA.latest).toEqual(viaB.latest);
  });

  it('accepts kdc1 ids under --openbao-addr and every legacy address, and nothing under another address', () => {
    const { byKeyId } = keyIdsOf(scheme({ servers: [B, A] }), key);
    for (const server of [A, B]) {
      expect(byKeyId.get(legacyKeyIdFor(server, identity, 1, 1_765_000_000))).toBe(1);
      expect(byKeyId.get(legacyKeyIdFor(server, identity, 2, 1_766_000_000))).toBe(2);
    }
    expect(byKeyId.get(keyIdFor(identity, 1, 1_765_000_000))).toBe(1);
    expect(byKeyId.has(legacyKeyIdFor('https://openbao:8200', identity, 1, 1_765_000_000))).toBe(false);
    // Without the legacy address, rows written under A are refused: the bricked tenant of a URL change.
    expect(keyIdsOf(scheme({ servers: [B] }), key).byKeyId.has(legacyKeyIdFor(A, identity, 1, 1_765_000_000))).toBe(
      false,
    );
    expect(byKeyId.size).toBe(2 * 3);
  });

  it('publishes the kdc1 id under --openbao-addr when asked to (rollback-safe upgrade)', () => {
    expect(keyIdsOf(scheme({ publish: 'kdc1', servers: [A, B] }), key).latest).toEqual({
      keyId: legacyKeyIdFor(A, identity, 2, 1_766_000_000),
      version: 2,
    });
  });

  it('refuses a key without the creation time of its latest version', () => {
    expect(() => keyIdsOf(scheme(), { ...key, versions: { 1: 1 } })).toThrow(/latest version 2/);
  });
});

describe('nextPublished', () => {
  const v1 = { keyId: 'kdc2.v1.a', version: 1 };
  const v2 = { keyId: 'kdc2.v2.b', version: 2 };
  it.each([
    ['first check', undefined, v1, v1, false],
    ['rotation', v1, v2, v2, false],
    ['same', v2, v2, v2, false],
    ['older version seen (a restored OpenBao)', v2, v1, v2, true],
    ['same version, other id (a recreated key)', v1, { keyId: 'kdc2.v1.z', version: 1 }, v1, true],
  ])('%s', (_name, current, observed, publish, rollback) => {
    expect(nextPublished(current, observed)).toEqual({ publish, rollback });
  });
});
