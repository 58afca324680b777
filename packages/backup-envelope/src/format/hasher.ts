import { createHash } from 'node:crypto';
import { BackupError } from '../errors.ts';

/**
 * SHA-256 of the plaintext as it streams by. With `expectTrailerAt(n)` it also checks the etcd
 * snapshot convention: the stream is an n-byte database followed by SHA-256(database). One pass:
 * the hash state is copied at offset n.
 */
export class PlaintextHasher {
  private readonly hash = createHash('sha256');
  size = 0;
  private trailerAt: number | undefined;
  private databaseDigest: Buffer | undefined;
  private trailer: Buffer[] = [];
  private trailerLength = 0;

  expectTrailerAt(databaseSize: number): void {
    if (this.size > databaseSize) throw new Error('expectTrailerAt after the database end went by');
    this.trailerAt = databaseSize;
  }

  update(chunk: Buffer): void {
    if (
      this.trailerAt !== undefined &&
      this.databaseDigest === undefined &&
      this.size + chunk.length >= this.trailerAt
    ) {
      const cut = this.trailerAt - this.size;
      this.hash.update(chunk.subarray(0, cut));
      this.databaseDigest = this.hash.copy().digest();
      this.hash.update(chunk.subarray(cut));
      this.keepTrailer(chunk.subarray(cut));
    } else {
      this.hash.update(chunk);
      if (this.databaseDigest) this.keepTrailer(chunk);
    }
    this.size += chunk.length;
  }

  private keepTrailer(bytes: Buffer): void {
    if (this.trailerLength < 64) this.trailer.push(Buffer.from(bytes.subarray(0, 64)));
    this.trailerLength += bytes.length;
  }

  /** The digest and size; throws SNAPSHOT_CORRUPT when an expected etcd trailer is wrong. */
  finish(): { sha256: Buffer; size: number } {
    checkTrailer(this.trailerAt, this.size, this.databaseDigest, this.trailer, this.trailerLength);
    return { sha256: this.hash.digest(), size: this.size };
  }
}

export function checkTrailer(
  trailerAt: number | undefined,
  size: number,
  databaseDigest: Buffer | undefined,
  trailer: Buffer[],
  trailerLength: number,
): void {
  if (trailerAt === undefined) return;
  if (databaseDigest === undefined || trailerLength !== 32) {
    throw new BackupError(
      'SNAPSHOT_CORRUPT',
      `the etcd snapshot stream announced a ${trailerAt}-byte database followed by its 32-byte SHA-256, but delivered ${size} bytes in total`,
      { databaseSize: trailerAt, size },
    );
  }
  if (!Buffer.concat(trailer).equals(databaseDigest)) {
    throw new BackupError(
      'SNAPSHOT_CORRUPT',
      'the etcd snapshot stream ends with a SHA-256 that does not match the database it sent: the snapshot is corrupt, nothing was kept',
      { databaseSize: trailerAt },
    );
  }
}

/** What a snapshot source needs of the hasher: where etcd's SHA-256 trailer starts. */
export interface TrailerListener {
  expectTrailerAt(databaseSize: number): void;
}
