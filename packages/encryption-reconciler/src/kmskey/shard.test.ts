import { describe, expect, it } from 'vitest';
import { kmsKeyShardOf, ownsKmsKey, parseKmsKeyShard } from './shard.ts';

const key = (namespace: string) => ({ metadata: { namespace, name: 'etcd' } });

describe('KMSKey shards (KMSKEY_SHARD)', () => {
  it.each([
    [undefined, { index: 0, count: 1 }],
    ['', { index: 0, count: 1 }],
    ['0/3', { index: 0, count: 3 }],
    [' 2/3 ', { index: 2, count: 3 }],
  ])('%j parses', (value, shard) => expect(parseKmsKeyShard(value)).toEqual(shard));
  it.each(['3/3', '1/0', '-1/3', '1', 'a/b', '1/3/5', '0/65'])('%j is refused with what to write instead', (value) =>
    expect(() => parseKmsKeyShard(value)).toThrow(/KMSKEY_SHARD: .* is not <index>\/<count> .* one of 0\/N/),
  );
  it('every namespace belongs to exactly one shard, for every count', () => {
    const namespaces = Array.from({ length: 500 }, (_, i) => `tenant-${i}`);
    for (const count of [1, 2, 3, 5]) {
      const shards = Array.from({ length: count }, (_, index) => ownsKmsKey({ index, count }));
      for (const ns of namespaces) expect(shards.filter((owns) => owns(key(ns)))).toHaveLength(1);
    }
  });
  it('a namespace keeps its shard (every release computes the same) and 5,000 spread evenly over 3', () => {
    expect(kmsKeyShardOf('acme', 3)).toBe(kmsKeyShardOf('acme', 3));
    const sizes = [0, 0, 0];
    for (let i = 0; i < 5_000; i++) sizes[kmsKeyShardOf(`t${i}`, 3)]!++;
    for (const size of sizes) expect(size).toBeGreaterThan(1_500); // 1,667 each when even
  });
  it("a tenant's keys stay together", () => {
    const owns = ownsKmsKey({ index: kmsKeyShardOf('acme', 3), count: 3 });
    expect([owns(key('acme')), owns({ metadata: { namespace: 'acme', name: 'backup' } })]).toEqual([true, true]);
  });
});
