import { createHash, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StreamDecryptor } from './decrypt.ts';
import { StreamEncryptor } from './encrypt.ts';
import { kdfInfo, type BoundMetadata } from './kdf.ts';
import { HEADER_LENGTH, ciphertextSizeFor } from './spec.ts';

// The test vector lives in docs/backup-format.md; this test reads it from there, so the
// document and the code cannot drift apart.
const doc = readFileSync(new URL('../../../../docs/backup-format.md', import.meta.url), 'utf8');
const block = /```json test-vector\n([\s\S]*?)\n```/.exec(doc);
const v = JSON.parse(block![1]!) as {
  dek: string;
  salt: string;
  noncePrefix: string;
  bound: BoundMetadata;
  plaintext: string;
  kdfInfo: string;
  segmentKey: string;
  keyCheck: string;
  header: string;
  plaintextSha256: string;
  plaintextSize: number;
  ciphertextSize: number;
  ciphertext: string;
};
const hex = (s: string) => Buffer.from(s, 'hex');

describe('docs/backup-format.md test vector', () => {
  it('derives the documented info, key and key check', () => {
    expect(kdfInfo(v.bound)).toBe(v.kdfInfo);
    const okm = Buffer.from(hkdfSync('sha256', hex(v.dek), hex(v.salt), Buffer.from(v.kdfInfo), 64));
    expect(okm.subarray(0, 32).toString('hex')).toBe(v.segmentKey);
    expect(okm.subarray(32).toString('hex')).toBe(v.keyCheck);
  });

  it('encrypts to exactly the documented bytes', async () => {
    const enc = new StreamEncryptor({
      dek: hex(v.dek),
      bound: v.bound,
      salt: hex(v.salt),
      noncePrefix: hex(v.noncePrefix),
    });
    expect(enc.header.toString('hex')).toBe(v.header);
    expect(enc.header.length).toBe(HEADER_LENGTH);
    const parts: Buffer[] = [];
    for await (const p of enc.encrypt([Buffer.from(v.plaintext)])) parts.push(p);
    const file = Buffer.concat(parts);
    expect(file.toString('hex')).toBe(v.ciphertext);
    expect(file.length).toBe(v.ciphertextSize);
    expect(ciphertextSizeFor(v.plaintextSize, v.bound.segmentSize)).toBe(v.ciphertextSize);
    expect(createHash('sha256').update(v.plaintext).digest('hex')).toBe(v.plaintextSha256);
  });

  it('decrypts the documented bytes', async () => {
    const decryptor = new StreamDecryptor({
      expect: {
        bound: v.bound,
        salt: hex(v.salt),
        sha256: hex(v.plaintextSha256),
        plaintextSize: v.plaintextSize,
        ciphertextSize: v.ciphertextSize,
      },
      unwrap: async () => hex(v.dek),
    });
    const out: Buffer[] = [];
    for await (const p of decryptor.decrypt([hex(v.ciphertext)])) out.push(p);
    expect(Buffer.concat(out).toString('utf8')).toBe(v.plaintext);
    expect(decryptor.segments).toBe(3);
  });
});
