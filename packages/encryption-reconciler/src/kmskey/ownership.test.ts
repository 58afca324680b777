import { describe, expect, it } from 'vitest';
import type { OwnerRecord, TransitKey } from '@kdc/shared';
import { resolveOwnership, type OwnershipInput } from './ownership.ts';

const v1 = 1_760_000_000;
const legacyKey: TransitKey = {
  name: 'acme-shop-prod-web-etcd',
  type: 'aes256-gcm96',
  latestVersion: 1,
  minDecryptionVersion: 1,
  minEncryptionVersion: 0,
  deletionAllowed: false,
  exportable: false,
  autoRotatePeriodSeconds: 0,
  versions: { 1: v1 },
};
const at = (unix: number) => new Date(unix * 1000).toISOString();
const record = (uid: string, namespace = 'acme-shop', kmsKey = 'prod-web-etcd'): OwnerRecord => ({
  owner: { namespace, kmsKey, uid, purpose: 'etcd', origin: 'created', claimedAt: at(v1) },
  version: 1,
});
// The victim acme-shop/prod-web-etcd and the neighbour acme-shop-prod/web-etcd share the legacy name.
const victim = { uid: 'victim', namespace: 'acme-shop', name: 'prod-web-etcd' };
const neighbour = { uid: 'neighbour', namespace: 'acme-shop-prod', name: 'web-etcd' };
const input = (o: Partial<OwnershipInput> = {}): OwnershipInput => ({
  ...victim,
  current: null,
  legacy: null,
  legacyKey: null,
  legacyNamesakes: [],
  ...o,
});

describe('resolveOwnership', () => {
  it('a fresh KMSKey gets its own, namespaced name', () => {
    expect(resolveOwnership(input())).toEqual({
      transitKeyName: 'acme-shop.prod-web-etcd',
      ownership: { kind: 'unclaimed' },
    });
  });
  it('the registry decides by uid', () => {
    expect(resolveOwnership(input({ current: record('victim') })).ownership.kind).toBe('owned');
    expect(resolveOwnership(input({ current: record('an-earlier-kmskey') })).ownership).toMatchObject({
      kind: 'refused',
      reason: 'TransitKeyOwnedElsewhere',
      message: expect.stringMatching(/uid an-earlier-kmskey/),
    });
  });
  it('keeps a legacy key it owns', () => {
    expect(resolveOwnership(input({ legacy: record('victim') }))).toMatchObject({
      transitKeyName: 'acme-shop-prod-web-etcd',
      ownership: { kind: 'owned' },
    });
  });
  it('migrates a legacy key only for the one KMSKey that existed when it was created', () => {
    const namesakes = [
      { ...victim, creationTimestamp: at(v1 - 60) },
      { ...neighbour, creationTimestamp: at(v1 + 3600) },
    ];
    expect(resolveOwnership(input({ legacyKey, legacyNamesakes: namesakes }))).toEqual({
      transitKeyName: 'acme-shop-prod-web-etcd',
      ownership: { kind: 'legacyAdoptable' },
    });
    // The neighbour, created later, never gets it: a fresh key of its own.
    expect(resolveOwnership(input({ ...neighbour, legacyKey, legacyNamesakes: namesakes }))).toEqual({
      transitKeyName: 'acme-shop-prod.web-etcd',
      ownership: { kind: 'unclaimed' },
    });
  });
  it("a neighbour that was already using the victim's legacy key is refused, not switched to a new key", () => {
    const namesakes = [
      { ...victim, creationTimestamp: at(v1 - 60) },
      { ...neighbour, creationTimestamp: at(v1 + 3600) },
    ];
    const hint = 'transit/keys/acme-shop-prod-web-etcd';
    expect(
      resolveOwnership(input({ ...neighbour, keyIdHint: hint, legacyKey, legacyNamesakes: namesakes })).ownership,
    ).toMatchObject({ kind: 'refused', reason: 'LegacyKeyOwnershipUnproven' });
    expect(
      resolveOwnership(input({ ...neighbour, keyIdHint: hint, legacy: record('victim') })).ownership,
    ).toMatchObject({ kind: 'refused', reason: 'TransitKeyOwnedElsewhere' });
  });
  it('two KMSKeys older than the key: nobody is given it', () => {
    const namesakes = [
      { ...victim, creationTimestamp: at(v1 - 60) },
      { ...neighbour, creationTimestamp: at(v1 - 30) },
    ];
    expect(resolveOwnership(input({ legacyKey, legacyNamesakes: namesakes })).ownership).toMatchObject({
      kind: 'refused',
      reason: 'LegacyKeyOwnershipUnproven',
      message: expect.stringMatching(/acme-shop-prod\/web-etcd/),
    });
  });
  it('a legacy key created before its KMSKey (pre-created, or the KMSKey re-created) is not adopted, not even a second before', () => {
    expect(
      resolveOwnership(input({ legacyKey, legacyNamesakes: [{ ...victim, creationTimestamp: at(v1 + 1) }] })).ownership
        .kind,
    ).toBe('unclaimed');
    expect(
      resolveOwnership(input({ legacyKey, legacyNamesakes: [{ ...victim, creationTimestamp: at(v1) }] })).ownership
        .kind,
    ).toBe('legacyAdoptable');
    const namesakes = [{ ...victim, creationTimestamp: at(v1 + 3600) }];
    expect(resolveOwnership(input({ legacyKey, legacyNamesakes: namesakes })).transitKeyName).toBe(
      'acme-shop.prod-web-etcd',
    );
    expect(
      resolveOwnership(
        input({ keyIdHint: 'transit/keys/acme-shop-prod-web-etcd', legacyKey, legacyNamesakes: namesakes }),
      ).ownership.kind,
    ).toBe('refused');
  });
});
