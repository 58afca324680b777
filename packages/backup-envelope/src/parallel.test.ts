import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StreamEncryptor } from './format/encrypt.ts';
import type { BoundMetadata } from './format/kdf.ts';
import { ALGORITHM, SCHEMA_VERSION } from './format/spec.ts';
import { ParallelEncryptor } from './parallel.ts';

// The worker-thread encryptor must write exactly the bytes of the reference StreamEncryptor
// (whose output the test vector pins), whatever the part size and the input chunking.

const bound = (segmentSize: number): BoundMetadata => ({
  schemaVersion: SCHEMA_VERSION,
  algorithm: ALGORITHM,
  transitKey: 'acme-shop-prod-etcd',
  createdAt: '2026-01-02T03:04:05.678Z',
  source: { cluster: 'prod', namespace: 'acme-shop' },
  segmentSize,
});

async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('ParallelEncryptor', () => {
  it.each([
    ['empty', 0, 64, 128],
    ['one partial segment', 50, 64, 128],
    ['exact segments', 64 * 5, 64, 128],
    ['segments straddle parts', 64 * 9 + 3, 64, 150],
    ['parts smaller than a segment', 1000, 256, 130],
    ['1 MiB segments, 8 MiB parts', 3 * 1024 * 1024 + 17, 1 << 20, 8 << 20],
  ])('%s: same bytes as StreamEncryptor', async (_, size, segmentSize, partSize) => {
    const plaintext = randomBytes(size);
    const dek = randomBytes(32);
    const salt = randomBytes(32);
    const noncePrefix = randomBytes(7);
    const reference = new StreamEncryptor({ dek: Buffer.from(dek), bound: bound(segmentSize), salt, noncePrefix });
    const expected: Buffer[] = [];
    for await (const piece of reference.encrypt(chunked(plaintext, 7919))) expected.push(Buffer.from(piece));

    const parallel = new ParallelEncryptor({ dek: Buffer.from(dek), bound: bound(segmentSize), salt, noncePrefix });
    const parts: Buffer[] = [];
    try {
      for await (const part of parallel.parts(chunked(plaintext, 4099), { partSize, parts: 3 })) {
        expect(part.data.length).toBeLessThanOrEqual(partSize);
        parts.push(Buffer.from(part.data));
        part.release();
      }
    } finally {
      await parallel.close();
    }
    expect(Buffer.concat(parts).equals(Buffer.concat(expected))).toBe(true);
    expect(parts.slice(0, -1).every((p) => p.length === partSize)).toBe(true);
    expect(parallel.result).toEqual(reference.result);
  });
});
