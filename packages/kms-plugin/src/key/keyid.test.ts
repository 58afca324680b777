import { describe, expect, it } from 'vitest';
import { keyIdFor, keyIdHash, legacyKeyIdFor, versionOfKeyId } from './keyid.ts';

const identity = { namespace: '', mount: 'transit', key: 'ns-prod-etcd' };

describe('key ids (kdc2, published)', () => {
  it('are stable for the same key version and at most 1 KiB', () => {
    const a = keyIdFor(identity, 3, 1_700_000_000);
    expect(keyIdFor(identity, 3, 1_700_000_000)).toBe(a);
    expect(a).toMatch(/^kdc2\.v3\.[A-Za-z0-9_-]{32}$/);
    expect(a.length).toBeLessThanOrEqual(1024);
    expect(versionOfKeyId(a)).toBe(3);
  });

  it('differ by version, creation time (a recreated key) and key identity', () => {
    const base = keyIdFor(identity, 1, 1_700_000_000);
    expect(keyIdFor(identity, 2, 1_700_000_000)).not.toBe(base);
    expect(keyIdFor(identity, 1, 1_700_000_001)).not.toBe(base);
    expect(keyIdFor({ ...identity, key: 'other' }, 1, 1_700_000_000)).not.toBe(base);
    expect(keyIdFor({ ...identity, namespace: 'acme' }, 1, 1_700_000_000)).not.toBe(base);
    expect(keyIdFor({ ...identity, mount: 'transit-b' }, 1, 1_700_000_000)).not.toBe(base);
  });

  it('do not depend on how the namespace and mount are spelled', () => {
    const acme = { ...identity, namespace: 'acme' };
    expect(keyIdFor({ ...acme, namespace: 'acme/', mount: '/transit/' }, 1, 1)).toBe(keyIdFor(acme, 1, 1));
  });

  it('never equal the kdc1 id of the same version', () => {
    expect(keyIdFor(identity, 1, 1)).not.toBe(legacyKeyIdFor('https://bao:8200', identity, 1, 1));
  });

  it('do not expose the key name', () => {
    expect(keyIdFor(identity, 1, 1)).not.toContain('ns-prod-etcd');
  });
});

describe('legacy key ids (kdc1, decrypted only)', () => {
  // Computed with the keyIdFor of the release before kdc2 (commit 081dcde): rows written by it
  // carry exactly these ids, so they must never change.
  it.each([
    ['https://bao:8200', identity, 3, 1_700_000_000, 'kdc1.v3.jK2TBmlzoOAoapHeZu-eV-RMj4LiYNWk'],
    [
      'https://127.0.0.1:8200',
      { namespace: 'acme', mount: 'transit', key: 'acme-dev.c1-etcd' },
      1,
      1_765_000_000,
      'kdc1.v1.eGSma7fE1OLppHbdLR-RCSmxjFK_t64A',
    ],
  ])('%s %j v%i matches the earlier release byte for byte', (server, id, version, created, expected) => {
    expect(legacyKeyIdFor(server, id, version, created)).toBe(expected);
    expect(versionOfKeyId(expected)).toBe(version);
  });

  it('depend on the URL (why kdc2 exists)', () => {
    expect(legacyKeyIdFor('https://localhost:8200', identity, 3, 1_700_000_000)).not.toBe(
      legacyKeyIdFor('https://bao:8200', identity, 3, 1_700_000_000),
    );
  });
});

describe('versionOfKeyId', () => {
  it.each([
    '',
    'kdc1.v1.short',
    'kdc3.v1.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    'obk2.v1.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    'kdc2.vX.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    `kdc2.v1.${'a'.repeat(33)}`,
  ])('rejects foreign id %j', (id) => {
    expect(versionOfKeyId(id)).toBeNull();
  });

  it('hashes for labels', () => {
    expect(keyIdHash('x')).toMatch(/^[0-9a-f]{16}$/);
  });
});
