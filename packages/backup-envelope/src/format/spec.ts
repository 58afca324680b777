// The `snapshot.db.enc` byte format, schema version 2 (docs/backup-format.md): a segmented
// streaming AEAD in the style of Tink's AES-GCM-HKDF streaming AEAD and age's STREAM.
//
//   file    = header || segment_0 || ... || segment_{n-1}            (n >= 1)
//   header  = magic "KDC-SNAP" || version 0x02 || algorithm 0x01 || segmentSize u32be
//             || salt[32] || noncePrefix[7] || keyCheck[32]            (85 bytes)
//   okm     = HKDF-SHA256(ikm = DEK, salt, info = kdfInfo(bound metadata), 64 bytes)
//   key     = okm[0..32]; keyCheck = okm[32..64]
//   seg_i   = AES-256-GCM(key, nonce = noncePrefix || u32be(i) || last, aad, plaintext_i) || tag[16]
//   aad     = header                                   (every segment but the last)
//           = header || sha256(plaintext) || u64be(size)                  (the last)
//
// Every segment but the last holds exactly segmentSize plaintext bytes; the last holds
// 1..segmentSize (0 only when the whole plaintext is empty). The wrapped DEK is outside
// everything keyed by the DEK, so Transit rewrap replaces it without touching this file.
//
// The constants and bounds live here, apart from the code that reads and writes the bytes, so
// every writer and reader (the streaming ones, the worker-thread ones, metadata.json) checks
// against one definition.
import { NONCE_PREFIX_LENGTH } from './segment.ts';

export const SCHEMA_VERSION = 2;
export const ALGORITHM = 'AES-256-GCM-HKDF-SHA256-STREAM';
export const KDF_NAME = 'HKDF-SHA256';
export const KDF_INFO_PREFIX = 'kdc-backup-envelope/v2\n';
export const MAGIC = Buffer.from('KDC-SNAP', 'latin1');
export const ALGORITHM_ID = 1;
export const SALT_LENGTH = 32;
export const KEY_CHECK_LENGTH = 32;
export const TAG_LENGTH = 16;
export const HEADER_LENGTH = MAGIC.length + 1 + 1 + 4 + SALT_LENGTH + NONCE_PREFIX_LENGTH + KEY_CHECK_LENGTH;
// One set of bounds for every writer (the job's --segment-size, both encryptors) and every reader
// (metadata.json, both decryptors), checked before anything is allocated from them: a reader never
// accepts what no writer can produce. 16 bytes is the test vector's segment size.
export const MIN_SEGMENT_SIZE = 16;
export const MAX_SEGMENT_SIZE = 64 * 1024 * 1024;
export const DEFAULT_SEGMENT_SIZE = 1 << 20;
/** The segment counter is 32 bits. */
export const MAX_SEGMENTS = 2 ** 32;
/** 1 TiB: far above any etcd database (its quota tops out at 8 GiB), and every size a safe integer. */
export const MAX_PLAINTEXT_SIZE = 2 ** 40;

export function checkSegmentSize(segmentSize: number): void {
  if (!Number.isInteger(segmentSize) || segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
    throw new RangeError(`segment size ${segmentSize} is outside ${MIN_SEGMENT_SIZE}..${MAX_SEGMENT_SIZE} bytes`);
  }
}

export function segmentCount(plaintextSize: number, segmentSize: number): number {
  return Math.max(1, Math.ceil(plaintextSize / segmentSize));
}

/** The plaintext size and the segment count it implies are within the format's bounds. */
export function checkPlaintextSize(plaintextSize: number, segmentSize: number): void {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0 || plaintextSize > MAX_PLAINTEXT_SIZE) {
    throw new RangeError(`plaintext size ${plaintextSize} is outside 0..${MAX_PLAINTEXT_SIZE} bytes`);
  }
  const count = segmentCount(plaintextSize, segmentSize);
  if (count > MAX_SEGMENTS)
    throw new RangeError(
      `${count} segments of ${segmentSize} bytes exceed the ${MAX_SEGMENTS} segments the 32-bit counter allows`,
    );
}

/** Exact size of snapshot.db.enc for a plaintext of `plaintextSize` bytes. */
export function ciphertextSizeFor(plaintextSize: number, segmentSize: number): number {
  return HEADER_LENGTH + plaintextSize + TAG_LENGTH * segmentCount(plaintextSize, segmentSize);
}
