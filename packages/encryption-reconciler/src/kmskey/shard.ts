// KMSKeys carry no label a platform controls (a tenant writes its own keys), so a label selector
// cannot split them between releases the way CLUSTER_SELECTOR splits KdcClusters. A hash of the
// namespace can: every release computes the same owner for a key without talking to the others,
// and a tenant's keys stay together (one queue turn per namespace, as the work queue is fair by
// namespace). The ownership registry arbitrates any name two shards might both claim.
import { createHash } from 'node:crypto';
import type { KubeObject } from '@kdc/shared';

export interface KmsKeyShard {
  index: number;
  count: number;
}

export const ALL_KMSKEYS: KmsKeyShard = { index: 0, count: 1 };

/** KMSKEY_SHARD: `<index>/<count>`, e.g. `0/3`, `1/3`, `2/3` in three releases; empty: every key. */
export function parseKmsKeyShard(value: string | undefined): KmsKeyShard {
  if (value === undefined || value.trim() === '') return ALL_KMSKEYS;
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || count > 64 || index >= count)
    throw new Error(
      `KMSKEY_SHARD: "${value}" is not <index>/<count> with 0 <= index < count <= 64; give each release running the kmskey controller one of 0/N ... N-1/N, or leave it empty for every KMSKey`,
    );
  return { index, count };
}

/** The shard (0 ... count-1) a namespace's KMSKeys belong to: the first 4 bytes of its SHA-256. */
export function kmsKeyShardOf(namespace: string, count: number): number {
  return createHash('sha256').update(namespace).digest().readUInt32BE(0) % count;
}

export function ownsKmsKey(shard: KmsKeyShard): (key: KubeObject) => boolean {
  if (shard.count === 1) return () => true;
  return (key) => kmsKeyShardOf(key.metadata?.namespace ?? '', shard.count) === shard.index;
}
