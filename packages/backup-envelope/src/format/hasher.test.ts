import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PlaintextHasher } from './hasher.ts';

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('PlaintextHasher', () => {
  it('checks the etcd SHA-256 trailer in the same pass', async () => {
    const db = randomBytes(3 * 512);
    const good = Buffer.concat([db, createHash('sha256').update(db).digest()]);
    const hasher = new PlaintextHasher();
    hasher.expectTrailerAt(db.length);
    for (const c of chunked(good, 100)) hasher.update(c);
    expect(hasher.finish().sha256.equals(createHash('sha256').update(good).digest())).toBe(true);

    const bad = Buffer.from(good);
    bad[bad.length - 1]! ^= 1;
    const h2 = new PlaintextHasher();
    h2.expectTrailerAt(db.length);
    for (const c of chunked(bad, 100)) h2.update(c);
    expect(() => h2.finish()).toThrow(expect.objectContaining({ code: 'SNAPSHOT_CORRUPT' }));

    const h3 = new PlaintextHasher();
    h3.expectTrailerAt(db.length);
    h3.update(Buffer.concat([good, Buffer.alloc(1)]));
    expect(() => h3.finish()).toThrow(/delivered/);
  });
});
