import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { V1Decryptor } from './legacy.ts';

// Builds a schemaVersion 1 file by hand, the way the single-seal writer did.
function sealV1(plaintext: Buffer, dek: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dek, nonce);
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function openV1(file: Buffer, dek: Buffer, sha256?: Buffer) {
  const d = new V1Decryptor({ dek: Buffer.from(dek), ...(sha256 ? { sha256 } : {}) });
  const out: Buffer[] = [];
  try {
    for await (const p of d.decrypt(chunked(file, 7))) out.push(p);
    return { plaintext: Buffer.concat(out) };
  } catch (error) {
    return { error: error as Error & { code: string } };
  }
}

describe('schemaVersion 1 (single seal) reader', () => {
  const dek = randomBytes(32);
  const plaintext = randomBytes(10_000);
  const sha = createHash('sha256').update(plaintext).digest();

  it.each([0, 1, 16, 17, 10_000])('round-trips %i bytes', async (size) => {
    const p = plaintext.subarray(0, size);
    const result = await openV1(sealV1(p, dek), dek, createHash('sha256').update(p).digest());
    expect(result.plaintext?.equals(p)).toBe(true);
  });

  it('refuses a flipped byte, truncation, appended bytes, another key, another hash', async () => {
    const file = sealV1(plaintext, dek);
    const flipped = Buffer.from(file);
    flipped[500]! ^= 1;
    expect((await openV1(flipped, dek)).error?.code).toBe('SEGMENT_TAMPERED');
    expect((await openV1(file.subarray(0, file.length - 1), dek)).error?.code).toBe('SEGMENT_TAMPERED');
    expect((await openV1(file.subarray(0, 20), dek)).error?.code).toBe('TRUNCATED');
    expect((await openV1(Buffer.concat([file, Buffer.alloc(3)]), dek)).error?.code).toBe('SEGMENT_TAMPERED');
    expect((await openV1(file, randomBytes(32))).error?.code).toBe('SEGMENT_TAMPERED');
    expect((await openV1(file, dek, randomBytes(32))).error?.code).toBe('METADATA_ALTERED');
    expect((await openV1(file, dek, sha)).plaintext?.equals(plaintext)).toBe(true);
  });
});
