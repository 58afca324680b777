import { describe, expect, it } from 'vitest';
import {
  checkAnnotations,
  checkCiphertext,
  checkKeyId,
  checkPlaintext,
  checkPlaintextSize,
  maxPlaintextBytes,
  RequestError,
} from './validate.ts';

describe('request validation', () => {
  it('accepts our own ciphertext shape', () => {
    expect(checkCiphertext(Buffer.from('vault:v12:QUJDRA=='))).toEqual({ text: 'vault:v12:QUJDRA==', version: 12 });
  });

  it.each([
    [undefined, /must not be empty/],
    [Buffer.alloc(0), /must not be empty/],
    [Buffer.alloc(1025, 65), /at most 1024/],
    [Buffer.from('garbage'), /not a ciphertext this plugin produced/],
    [Buffer.from('vault:v1:'), /not a ciphertext/],
    [Buffer.from('vault:vx:QUJD'), /not a ciphertext/],
    [Buffer.from('vault:v1:QUJD\n'), /not a ciphertext/],
  ])('refuses ciphertext %#', (input, message) => {
    expect(() => checkCiphertext(input)).toThrow(message);
  });

  it('refuses empty plaintext', () => {
    expect(() => checkPlaintext(Buffer.alloc(0))).toThrow(RequestError);
    expect(checkPlaintext(Buffer.alloc(32))).toHaveLength(32);
  });

  it.each([
    // version, largest plaintext: its ciphertext is at most 1024 bytes, one byte more is not
    [1, 731],
    [9_999, 731],
    [10_000, 728],
    [99_999_999, 728],
    [123_456_789, 725],
  ])('at key version %i the largest plaintext is %i bytes, and its ciphertext fits', (version, max) => {
    expect(maxPlaintextBytes(version)).toBe(max);
    const ciphertextOf = (n: number) => `vault:v${version}:${Buffer.alloc(12 + n + 16).toString('base64')}`;
    expect(ciphertextOf(max).length).toBeLessThanOrEqual(1024);
    expect(ciphertextOf(max + 1).length).toBeGreaterThan(1024);
    expect(() => checkCiphertext(Buffer.from(ciphertextOf(max)))).not.toThrow();
    expect(() => checkPlaintextSize(Buffer.alloc(max), version)).not.toThrow();
    expect(() => checkPlaintextSize(Buffer.alloc(max + 1), version)).toThrow(
      `plaintext: is ${max + 1} bytes; at most ${max} bytes, so that its ciphertext stays within the 1024 bytes Decrypt accepts`,
    );
  });

  it('refuses empty or oversized key ids', () => {
    expect(() => checkKeyId('')).toThrow(/key_id/);
    expect(() => checkKeyId('x'.repeat(1025))).toThrow(/longer than 1024/);
  });

  it.each([
    [{ 'Upper.example.com': Buffer.from('x') }, /not a lowercase fully qualified/],
    [{ nodot: Buffer.from('x') }, /not a lowercase fully qualified/],
    [{ 'a/b.example.com': Buffer.from('x') }, /not a lowercase fully qualified/],
    [{ 'v.example.com': Buffer.alloc(40_000) }, /exceeds 32768/],
    [{ 'v.example.com': Buffer.from('x') }, /produces no annotations/],
  ])('refuses annotations %#', (annotations, message) => {
    expect(() => checkAnnotations(annotations)).toThrow(message);
  });

  it('accepts no annotations', () => {
    expect(() => checkAnnotations({})).not.toThrow();
    expect(() => checkAnnotations(undefined)).not.toThrow();
  });
});
