import { describe, expect, it } from 'vitest';
import { transitKeyName, type OpenBaoClient } from '@kdc/shared';
import { transitKeyLookup } from './transit-keys.ts';

// The ownership registry read through a fake OpenBao: records by Transit key name, reads counted.
function registry() {
  const records = new Map<string, { uid: string; namespace: string }>();
  const reads: string[] = [];
  const bao = {
    withNamespace: () => bao,
    readOrNull: async (path: string) => {
      const name = path.split('/').at(-1)!;
      reads.push(name);
      const owner = records.get(name);
      if (!owner) return null;
      const data = { ...owner, kmsKey: 'k', purpose: 'etcd', origin: 'created', claimedAt: '2026-12-06T00:00:00Z' };
      return { data: { data, metadata: { version: 1 } } };
    },
  } as unknown as OpenBaoClient;
  return { bao, records, reads };
}
const kmsKey = (uid: string) => ({ apiVersion: 'v1', kind: 'KMSKey', metadata: { namespace: 'ns', name: 'k', uid } });

describe('transitKeyLookup', () => {
  const key = transitKeyName('ns', 'k');

  it('caches an answer that confirms the asking KMSKey: a steady resync reads nothing', async () => {
    const { bao, records, reads } = registry();
    records.set(key, { uid: 'u1', namespace: 'ns' });
    const lookup = transitKeyLookup(bao, 3_600_000);
    expect(await lookup(undefined, kmsKey('u1'))).toBe(key);
    const first = reads.length;
    expect(first).toBeGreaterThan(0);
    expect(await lookup(undefined, kmsKey('u1'))).toBe(key);
    expect(await lookup.ownedByNamespace!(undefined, key, 'ns')).toBe(true);
    expect(reads.length).toBe(first);
  });

  it('reads again when the cached owner is another KMSKey: a hand-over is seen at once, not after the TTL', async () => {
    const { bao, records, reads } = registry();
    records.set(key, { uid: 'u1', namespace: 'ns' });
    const lookup = transitKeyLookup(bao, 3_600_000);
    expect(await lookup(undefined, kmsKey('u1'))).toBe(key);
    // The KMSKey was re-created (new uid) and an admin adopted the key for it.
    records.set(key, { uid: 'u2', namespace: 'ns' });
    const before = reads.length;
    expect(await lookup(undefined, kmsKey('u2'))).toBe(key);
    expect(reads.length).toBeGreaterThan(before);
    // And the old uid is no longer granted anything.
    expect(await lookup(undefined, kmsKey('u1'))).toBeNull();
    expect(await lookup.ownedByNamespace!(undefined, key, 'other')).toBe(false);
  });
});
