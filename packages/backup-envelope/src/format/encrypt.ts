import { createCipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { PlaintextHasher } from './hasher.ts';
import { encodeHeader } from './header.ts';
import { deriveKeys, kdfInfo, type BoundMetadata } from './kdf.ts';
import { NONCE_PREFIX_LENGTH, finalAad, segmentNonce } from './segment.ts';
import { HEADER_LENGTH, MAX_PLAINTEXT_SIZE, MAX_SEGMENTS, SALT_LENGTH, TAG_LENGTH, checkSegmentSize } from './spec.ts';

export interface EncryptorOptions {
  /** The plaintext 256-bit data key; the caller zeroes it once the encryptor exists. */
  dek: Uint8Array;
  bound: BoundMetadata;
  /** Fixed only by the test vector; random otherwise. */
  salt?: Buffer;
  noncePrefix?: Buffer;
  hasher?: PlaintextHasher;
}

export interface EncryptResult {
  sha256: Buffer;
  plaintextSize: number;
  ciphertextSize: number;
  segments: number;
}

export class StreamEncryptor {
  readonly header: Buffer;
  readonly salt: Buffer;
  readonly info: string;
  readonly segmentSize: number;
  private readonly noncePrefix: Buffer;
  private readonly key: KeyObject;
  private readonly hasher: PlaintextHasher;
  private done: EncryptResult | undefined;
  /** Plaintext bytes consumed and segments sealed so far (progress reporting). */
  bytesIn = 0;
  segments = 0;

  constructor(options: EncryptorOptions) {
    checkSegmentSize(options.bound.segmentSize);
    this.segmentSize = options.bound.segmentSize;
    this.salt = options.salt ?? randomBytes(SALT_LENGTH);
    this.noncePrefix = options.noncePrefix ?? randomBytes(NONCE_PREFIX_LENGTH);
    if (this.salt.length !== SALT_LENGTH || this.noncePrefix.length !== NONCE_PREFIX_LENGTH)
      throw new RangeError('salt must be 32 bytes and the nonce prefix 7');
    this.info = kdfInfo(options.bound);
    const { key, keyCheck } = deriveKeys(options.dek, this.salt, this.info);
    this.key = key;
    this.header = encodeHeader({
      segmentSize: this.segmentSize,
      salt: this.salt,
      noncePrefix: this.noncePrefix,
      keyCheck,
    });
    this.hasher = options.hasher ?? new PlaintextHasher();
  }

  get result(): EncryptResult {
    if (!this.done) throw new Error('the encryption has not finished');
    return this.done;
  }

  private seal(plaintext: Buffer, index: number, aad: Buffer, last: boolean): Buffer[] {
    if (index >= MAX_SEGMENTS) throw new RangeError('more than 2^32 segments: use a larger segment size');
    const cipher = createCipheriv('aes-256-gcm', this.key, segmentNonce(this.noncePrefix, index, last), {
      authTagLength: TAG_LENGTH,
    });
    cipher.setAAD(aad);
    const ciphertext = cipher.update(plaintext);
    cipher.final();
    this.segments = index + 1;
    return [ciphertext, cipher.getAuthTag()];
  }

  /**
   * header, then each sealed segment as (ciphertext, tag) buffers; pulls plaintext on demand.
   * Every input chunk is consumed (hashed and copied) before the next one is requested, so a
   * source may reuse its buffer.
   */
  async *encrypt(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
    yield Buffer.from(this.header);
    const segment = Buffer.allocUnsafe(this.segmentSize);
    let filled = 0;
    let index = 0;
    let ciphertextSize = HEADER_LENGTH;
    try {
      for await (const input of source) {
        const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
        if (chunk.length === 0) continue;
        this.hasher.update(chunk);
        this.bytesIn += chunk.length;
        if (this.bytesIn > MAX_PLAINTEXT_SIZE)
          throw new RangeError(`the snapshot is larger than ${MAX_PLAINTEXT_SIZE} bytes, the format's limit`);
        let at = 0;
        while (at < chunk.length) {
          // A full segment is sealed as non-final only once we know more bytes follow it.
          if (filled === this.segmentSize) {
            for (const part of this.seal(segment, index++, this.header, false)) {
              ciphertextSize += part.length;
              yield part;
            }
            filled = 0;
          }
          const n = Math.min(this.segmentSize - filled, chunk.length - at);
          chunk.copy(segment, filled, at, at + n);
          filled += n;
          at += n;
        }
      }
      const { sha256, size } = this.hasher.finish();
      for (const part of this.seal(segment.subarray(0, filled), index++, finalAad(this.header, sha256, size), true)) {
        ciphertextSize += part.length;
        yield part;
      }
      this.done = { sha256, plaintextSize: size, ciphertextSize, segments: index };
    } finally {
      segment.fill(0);
    }
  }
}
