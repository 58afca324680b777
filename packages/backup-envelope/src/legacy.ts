// Reader for the simple single-seal layout, schemaVersion 1 (read-only, for compatibility):
//   snapshot.db.enc = nonce[12] || AES-256-GCM(DEK, nonce, no AAD, plaintext) || tag[16]
// One tag covers the whole file, so plaintext cannot be verified before the end: the restore
// writes it to a 0600 temp file and removes that file if the tag (or the hash) fails.
import { createDecipheriv, createHash, type DecipherGCM } from 'node:crypto';
import { BackupError } from './errors.ts';

export const V1_ALGORITHM = 'AES-256-GCM';
export const V1_NONCE_LENGTH = 12;
export const V1_TAG_LENGTH = 16;
const V1_BLOCK = 1 << 20;

export interface V1DecryptOptions {
  /** Plaintext DEK; zeroed by the decryptor once the cipher is set up. */
  dek: Uint8Array;
  /** etcdSnapshotSha256 from metadata.json, when the writer recorded one. */
  sha256?: Buffer;
}

export class V1Decryptor {
  private readonly options: V1DecryptOptions;
  plaintextSize = 0;
  ciphertextRead = 0;
  sha256: Buffer | undefined;

  constructor(options: V1DecryptOptions) {
    this.options = options;
  }

  /** Yields plaintext that is NOT yet verified; throws at the end if the tag or hash fails. */
  async *decrypt(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
    const dek = this.options.dek;
    if (dek.length !== 32) throw new BackupError('WRONG_KEY', `the data key is ${dek.length} bytes, expected 32`);
    // Ciphertext is gathered in one reused 1 MiB buffer and deciphered a block at a time,
    // holding back the last 16 bytes (they may be the tag).
    const block = Buffer.allocUnsafe(V1_BLOCK + V1_TAG_LENGTH);
    let filled = 0;
    const nonce = Buffer.alloc(V1_NONCE_LENGTH);
    let nonceFilled = 0;
    let decipher: DecipherGCM | undefined;
    const hash = createHash('sha256');
    try {
      for await (const input of source) {
        const chunk = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
        this.ciphertextRead += chunk.length;
        let at = 0;
        if (!decipher) {
          at = chunk.copy(nonce, nonceFilled, 0, V1_NONCE_LENGTH - nonceFilled);
          nonceFilled += at;
          if (nonceFilled < V1_NONCE_LENGTH) continue;
          decipher = createDecipheriv('aes-256-gcm', dek, nonce, { authTagLength: V1_TAG_LENGTH });
          dek.fill(0);
        }
        while (at < chunk.length) {
          if (filled === block.length) {
            const out = decipher.update(block.subarray(0, V1_BLOCK));
            block.copy(block, 0, V1_BLOCK);
            filled = V1_TAG_LENGTH;
            hash.update(out);
            this.plaintextSize += out.length;
            yield out;
          }
          const n = chunk.copy(block, filled, at, Math.min(chunk.length, at + block.length - filled));
          filled += n;
          at += n;
        }
      }
      if (decipher && filled > V1_TAG_LENGTH) {
        const out = decipher.update(block.subarray(0, filled - V1_TAG_LENGTH));
        hash.update(out);
        this.plaintextSize += out.length;
        yield out;
      }
      const pending = block.subarray(Math.max(0, filled - V1_TAG_LENGTH), filled);
      if (!decipher || pending.length < V1_TAG_LENGTH) {
        throw new BackupError(
          'TRUNCATED',
          `snapshot.db.enc (single-seal v1) is ${this.ciphertextRead} bytes, shorter than nonce + tag (${V1_NONCE_LENGTH + V1_TAG_LENGTH}): the file was truncated`,
        );
      }
      decipher.setAuthTag(pending);
      try {
        decipher.final();
      } catch {
        throw new BackupError(
          'SEGMENT_TAMPERED',
          'snapshot.db.enc (single-seal v1) failed authentication: it was altered, truncated or extended, or metadata.json belongs to another backup (a v1 file cannot tell which)',
        );
      }
      this.sha256 = hash.digest();
      if (this.options.sha256 && !this.sha256.equals(this.options.sha256)) {
        throw new BackupError(
          'METADATA_ALTERED',
          'snapshot.db.enc (single-seal v1) authenticated, but its SHA-256 differs from etcdSnapshotSha256 in metadata.json: metadata.json was edited or belongs to another backup',
        );
      }
    } finally {
      dek.fill(0);
    }
  }
}
