import { describe, expect, it } from 'vitest';
import { keyIdFor, keyIdHash, versionOfKeyId } from './keyid.ts';

const identity = { server: 'https://bao:8200', namespace: '', mount: 'transit', key: 'ns-prod-etcd' };

describe('key ids', () => {
  it('are stable for the same key version and at most 1 KiB', () => {
    const a = keyIdFor(identity, 3, 1_700_000_000);
    expect(keyIdFor(identity, 3, 1_700_000_000)).toBe(a);
    expect(a.length).toBeLessThanOrEqual(1024);
    expect(versionOfKeyId(a)).toBe(3);
  });

  it('differ by version, creation time (a recreated key) and key identity', () => {
    const base = keyIdFor(identity, 1, 1_700_000_000);
    expect(keyIdFor(identity, 2, 1_700_000_000)).not.toBe(base);
    expect(keyIdFor(identity, 1, 1_700_000_001)).not.toBe(base);
    expect(keyIdFor({ ...identity, key: 'other' }, 1, 1_700_000_000)).not.toBe(base);
    expect(keyIdFor({ ...identity, namespace: 'acme' }, 1, 1_700_000_000)).not.toBe(base);
  });

  it('does not expose the key name', () => {
    expect(keyIdFor(identity, 1, 1)).not.toContain('ns-prod-etcd');
  });

  it.each(['', 'kdc1.v1.short', 'obk2.v1.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'kdc1.vX.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'])('rejects foreign id %j', (id) => {
    expect(versionOfKeyId(id)).toBeNull();
  });

  it('hashes for labels', () => {
    expect(keyIdHash('x')).toMatch(/^[0-9a-f]{16}$/);
  });
});
