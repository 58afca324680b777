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
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { BackupError } from './errors.ts';
import { NONCE_PREFIX_LENGTH, finalAad, segmentNonce } from './segment.ts';

export { NONCE_PREFIX_LENGTH, finalAad, segmentNonce };

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

/** The backup metadata that must never change: the key derivation binds it. */
export interface BoundMetadata {
  schemaVersion: typeof SCHEMA_VERSION;
  algorithm: typeof ALGORITHM;
  transitKey: string;
  createdAt: string;
  source: { cluster: string; namespace: string };
  segmentSize: number;
}

/** HKDF `info`: a fixed label, a newline, then the bound fields as JSON in this exact order. */
export function kdfInfo(bound: BoundMetadata): string {
  return (
    KDF_INFO_PREFIX +
    JSON.stringify({
      schemaVersion: bound.schemaVersion,
      algorithm: bound.algorithm,
      transitKey: bound.transitKey,
      createdAt: bound.createdAt,
      source: { cluster: bound.source.cluster, namespace: bound.source.namespace },
      segmentSize: bound.segmentSize,
    })
  );
}

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

export interface Header {
  version: number;
  algorithmId: number;
  segmentSize: number;
  salt: Buffer;
  noncePrefix: Buffer;
  keyCheck: Buffer;
  bytes: Buffer;
}

export function encodeHeader(input: {
  segmentSize: number;
  salt: Buffer;
  noncePrefix: Buffer;
  keyCheck: Buffer;
}): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH);
  let at = MAGIC.copy(header, 0);
  header[at++] = SCHEMA_VERSION;
  header[at++] = ALGORITHM_ID;
  at = header.writeUInt32BE(input.segmentSize, at);
  at += input.salt.copy(header, at);
  at += input.noncePrefix.copy(header, at);
  input.keyCheck.copy(header, at);
  return header;
}

/** Parses the fixed header; refuses anything that is not a version-2 envelope. */
export function parseHeader(bytes: Buffer): Header {
  if (bytes.length < HEADER_LENGTH) {
    throw new BackupError(
      'TRUNCATED',
      `snapshot.db.enc is ${bytes.length} bytes, shorter than its ${HEADER_LENGTH}-byte header: the file was truncated`,
      { size: bytes.length },
    );
  }
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new BackupError(
      'HEADER_INVALID',
      'snapshot.db.enc does not start with the "KDC-SNAP" magic: it is not a schemaVersion 2 backup envelope, or its first bytes were altered',
    );
  }
  let at = MAGIC.length;
  const version = bytes[at++]!;
  const algorithmId = bytes[at++]!;
  if (version !== SCHEMA_VERSION)
    throw new BackupError(
      'HEADER_INVALID',
      `snapshot.db.enc has format version ${version} in its header; metadata.json says ${SCHEMA_VERSION}: the header was altered`,
    );
  if (algorithmId !== ALGORITHM_ID)
    throw new BackupError(
      'HEADER_INVALID',
      `snapshot.db.enc names algorithm ${algorithmId} in its header; only ${ALGORITHM_ID} (${ALGORITHM}) exists: the header was altered`,
    );
  const segmentSize = bytes.readUInt32BE(at);
  at += 4;
  const salt = bytes.subarray(at, (at += SALT_LENGTH));
  const noncePrefix = bytes.subarray(at, (at += NONCE_PREFIX_LENGTH));
  const keyCheck = bytes.subarray(at, (at += KEY_CHECK_LENGTH));
  return { version, algorithmId, segmentSize, salt, noncePrefix, keyCheck, bytes: bytes.subarray(0, HEADER_LENGTH) };
}

/** HKDF-SHA256 -> (segment key, key check). The caller zeroes `dek` afterwards. */
export function deriveKeys(dek: Uint8Array, salt: Buffer, info: string): { key: KeyObject; keyCheck: Buffer } {
  if (dek.length !== 32)
    throw new BackupError('WRONG_KEY', `the data key is ${dek.length} bytes, expected 32 (a 256-bit Transit data key)`);
  const okm = Buffer.from(hkdfSync('sha256', dek, salt, Buffer.from(info, 'utf8'), 64));
  const key = createSecretKey(okm.subarray(0, 32));
  const keyCheck = Buffer.from(okm.subarray(32, 64));
  okm.fill(0);
  return { key, keyCheck };
}

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

/** What metadata.json claims; the decryptor checks the file against it. */
export interface DecryptExpectations {
  bound: BoundMetadata;
  salt: Buffer;
  sha256: Buffer;
  plaintextSize: number;
  ciphertextSize: number;
}

export interface DecryptorOptions {
  expect: DecryptExpectations;
  /** Unwraps the DEK (Transit decrypt); called once the header matched metadata.json. */
  unwrap: () => Promise<Uint8Array>;
  /** Size of the object as stored (Content-Length), for clearer truncation/append messages. */
  storedSize?: number;
  /** How many other segment positions to try when a segment fails (to name reorder/duplication). */
  maxReorderTrials?: number;
}

type Opened = { ok: true; plaintext: Buffer[] } | { ok: false; candidate: Buffer[] };

const zero = (buffers: Buffer[]) => buffers.forEach((b) => b.fill(0));
const byteLength = (buffers: Buffer[]) => buffers.reduce((n, b) => n + b.length, 0);

/**
 * Verifies and decrypts a version-2 file as it streams in. Each segment's plaintext is released
 * only after its tag verified; the last one only after the whole-plaintext SHA-256 (from
 * metadata.json, bound in its AAD) verified. Every failure is a BackupError naming what happened.
 */
export class StreamDecryptor {
  private readonly options: DecryptorOptions;
  segments = 0;
  plaintextSize = 0;
  ciphertextRead = 0;
  sha256: Buffer | undefined;

  constructor(options: DecryptorOptions) {
    this.options = options;
  }

  private checkHeader(header: Header): void {
    const expect = this.options.expect;
    if (header.segmentSize !== expect.bound.segmentSize) {
      throw new BackupError(
        'METADATA_MISMATCH',
        `snapshot.db.enc was written with ${header.segmentSize}-byte segments but metadata.json says ${expect.bound.segmentSize}: metadata.json belongs to another backup, or the file header was altered`,
        { headerSegmentSize: header.segmentSize, metadataSegmentSize: expect.bound.segmentSize },
      );
    }
    if (!header.salt.equals(expect.salt)) {
      throw new BackupError(
        'METADATA_MISMATCH',
        'the salt in snapshot.db.enc differs from kdf.salt in metadata.json: metadata.json belongs to another backup (or the header was altered)',
      );
    }
  }

  private async openKey(header: Header): Promise<KeyObject> {
    const dek = await this.options.unwrap();
    try {
      const { key, keyCheck } = deriveKeys(dek, header.salt, kdfInfo(this.options.expect.bound));
      if (!timingSafeEqual(keyCheck, header.keyCheck)) {
        throw new BackupError(
          'METADATA_ALTERED',
          'the key derived from metadata.json does not match the key check in snapshot.db.enc: a bound field of metadata.json (transitKey, createdAt, source.cluster, source.namespace, segmentSize) or its wrappedDek was changed, or the file header was altered',
        );
      }
      return key;
    } finally {
      dek.fill(0);
    }
  }

  /** Parses and checks the header against metadata.json, then unwraps and derives the key. */
  async openHeader(bytes: Buffer): Promise<{ header: Header; key: KeyObject }> {
    checkSegmentSize(this.options.expect.bound.segmentSize);
    const header = parseHeader(Buffer.from(bytes.subarray(0, HEADER_LENGTH)));
    this.checkHeader(header);
    return { header, key: await this.openKey(header) };
  }

  private open(key: KeyObject, header: Header, parts: Buffer[], index: number, last: boolean, aad: Buffer): Opened {
    const total = byteLength(parts);
    if (total < TAG_LENGTH) return { ok: false, candidate: [] };
    const decipher = createDecipheriv('aes-256-gcm', key, segmentNonce(header.noncePrefix, index, last), {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(aad);
    const ciphertextLength = total - TAG_LENGTH;
    const plaintext: Buffer[] = [];
    const tag: Buffer[] = [];
    let fed = 0;
    for (const part of parts) {
      const take = Math.min(part.length, Math.max(0, ciphertextLength - fed));
      if (take > 0) plaintext.push(decipher.update(take === part.length ? part : part.subarray(0, take)));
      if (take < part.length) tag.push(part.subarray(take));
      fed += take;
    }
    decipher.setAuthTag(tag.length === 1 ? tag[0]! : Buffer.concat(tag));
    try {
      decipher.final();
      return { ok: true, plaintext };
    } catch {
      return { ok: false, candidate: plaintext };
    }
  }

  /** Candidate segment positions near `index`, nearest first, within the file's plausible range. */
  private *trialIndices(index: number, header: Header): Generator<number> {
    const segmentBytes = header.segmentSize + TAG_LENGTH;
    const size = Math.max(this.options.expect.ciphertextSize, this.options.storedSize ?? 0, this.ciphertextRead);
    const count = Math.min(MAX_SEGMENTS, Math.ceil(Math.max(0, size - HEADER_LENGTH) / segmentBytes) + 1);
    const budget = this.options.maxReorderTrials ?? 1024;
    let tried = 0;
    for (let d = 1; tried < budget && (index - d >= 0 || index + d < count); d++) {
      if (index - d >= 0) {
        tried++;
        yield index - d;
      }
      if (index + d < count && tried < budget) {
        tried++;
        yield index + d;
      }
    }
  }

  private sizeNote(): string {
    const stored = this.options.storedSize;
    return stored === undefined
      ? ''
      : ` (snapshot.db.enc is ${stored} bytes; metadata.json says ${this.options.expect.ciphertextSize})`;
  }

  private classify(
    key: KeyObject,
    header: Header,
    parts: Buffer[],
    index: number,
    atEnd: boolean,
    offset: number,
    failed: Buffer[],
    running: ReturnType<typeof createHash>,
    producedSoFar: number,
  ): BackupError {
    const expect = this.options.expect;
    const expectedFinal = finalAad(header.bytes, expect.sha256, expect.plaintextSize);
    const tryOpen = (p: Buffer[], i: number, last: boolean, aad: Buffer) => {
      const opened = this.open(key, header, p, i, last, aad);
      zero(opened.ok ? opened.plaintext : opened.candidate);
      return opened.ok;
    };
    const where = { segment: index, offset };
    try {
      if (atEnd) {
        // The data is authentic but metadata.json's hash or size was edited?
        const candidate = running.copy();
        for (const piece of failed) candidate.update(piece);
        const candidateSize = producedSoFar + byteLength(failed);
        if (tryOpen(parts, index, true, finalAad(header.bytes, candidate.digest(), candidateSize))) {
          return new BackupError(
            'METADATA_ALTERED',
            'etcdSnapshotSha256 or plaintextSize in metadata.json differ from the values authenticated in snapshot.db.enc: metadata.json was edited',
            { ...where, authenticatedPlaintextSize: candidateSize },
          );
        }
        if (tryOpen(parts, index, false, header.bytes)) {
          return new BackupError(
            'TRUNCATED',
            `snapshot.db.enc ends after segment ${index}, which is not the final segment: the file was truncated${this.sizeNote()}`,
            where,
          );
        }
      } else if (tryOpen(parts, index, true, expectedFinal)) {
        return new BackupError(
          'TRAILING_DATA',
          `segment ${index} is the final segment of snapshot.db.enc but more bytes follow it: bytes were appended${this.sizeNote()}`,
          where,
        );
      }
      // The real end (per metadata.json) lies inside this chunk and the rest is extra bytes?
      const end = expect.ciphertextSize - offset;
      if (end >= TAG_LENGTH && end < byteLength(parts)) {
        const prefix = Buffer.concat(parts).subarray(0, end);
        if (tryOpen([prefix], index, true, expectedFinal)) {
          return new BackupError(
            'TRAILING_DATA',
            `snapshot.db.enc has extra bytes after its final segment ${index}: bytes were appended${this.sizeNote()}`,
            where,
          );
        }
      }
      for (const j of this.trialIndices(index, header)) {
        if (tryOpen(parts, j, false, header.bytes)) {
          return j < index
            ? new BackupError(
                'SEGMENT_DUPLICATED',
                `position ${index} of snapshot.db.enc holds a second copy of segment ${j}: segments were duplicated`,
                { ...where, found: j },
              )
            : new BackupError(
                'SEGMENT_REORDERED',
                `position ${index} of snapshot.db.enc holds segment ${j}: segments were reordered`,
                { ...where, found: j },
              );
        }
      }
      if (atEnd) {
        const read = this.ciphertextRead;
        if (read < expect.ciphertextSize)
          return new BackupError(
            'TRUNCATED',
            `snapshot.db.enc ends inside segment ${index} after ${read} bytes; metadata.json says ${expect.ciphertextSize}: the file was truncated`,
            { ...where, read },
          );
        if (read > expect.ciphertextSize)
          return new BackupError(
            'TRAILING_DATA',
            `snapshot.db.enc is ${read} bytes; metadata.json says ${expect.ciphertextSize}: bytes were appended or the last segment replaced`,
            { ...where, read },
          );
      }
      return new BackupError(
        'SEGMENT_TAMPERED',
        `segment ${index} of snapshot.db.enc (bytes ${offset}..${offset + byteLength(parts)}) failed authentication: its bytes were altered`,
        where,
      );
    } finally {
      zero(failed);
    }
  }

  /** Yields verified plaintext; throws a BackupError at the first problem. */
  async *decrypt(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
    const expect = this.options.expect;
    checkSegmentSize(expect.bound.segmentSize);
    checkPlaintextSize(expect.plaintextSize, expect.bound.segmentSize);
    const running = createHash('sha256');
    let header: Header | undefined;
    let key: KeyObject | undefined;
    let index = 0;
    let offset = HEADER_LENGTH;
    let produced = 0;
    const segmentBytes = expect.bound.segmentSize + TAG_LENGTH;
    // Chunks are copied into one reused segment buffer, so each segment is one decipher call
    // with one output buffer, whatever size the network hands us (far less garbage to collect).
    // It is allocated once the key check authenticated the segment size, not before.
    const headerBytes = Buffer.alloc(HEADER_LENGTH);
    let headerFilled = 0;
    let segment = Buffer.alloc(0);
    let filled = 0;

    const openOrFail = (parts: Buffer[], last: boolean): Buffer[] => {
      const aad = last ? finalAad(header!.bytes, expect.sha256, expect.plaintextSize) : header!.bytes;
      const opened = this.open(key!, header!, parts, index, last, aad);
      if (!opened.ok)
        throw this.classify(key!, header!, parts, index, last, offset, opened.candidate, running, produced);
      for (const piece of opened.plaintext) running.update(piece);
      produced += byteLength(opened.plaintext);
      offset += byteLength(parts);
      index++;
      this.segments = index;
      this.plaintextSize = produced;
      return opened.plaintext;
    };

    try {
      for await (const input of source) {
        const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
        this.ciphertextRead += chunk.length;
        let at = 0;
        if (!header) {
          at = chunk.copy(headerBytes, headerFilled, 0, HEADER_LENGTH - headerFilled);
          headerFilled += at;
          if (headerFilled < HEADER_LENGTH) continue;
          header = parseHeader(headerBytes);
          this.checkHeader(header);
          key = await this.openKey(header);
          segment = Buffer.allocUnsafe(segmentBytes);
        }
        while (at < chunk.length) {
          // A full segment with more bytes after it cannot be the last one.
          if (filled === segmentBytes) {
            if (index + 1 >= MAX_SEGMENTS)
              throw new BackupError('TRAILING_DATA', 'snapshot.db.enc has more than 2^32 segments');
            for (const piece of openOrFail([segment], false)) yield piece;
            filled = 0;
          }
          const n = chunk.copy(segment, filled, at, Math.min(chunk.length, at + segmentBytes - filled));
          filled += n;
          at += n;
        }
      }
      if (!header) {
        const head = headerBytes.subarray(0, headerFilled);
        if (head.length >= MAGIC.length && !head.subarray(0, MAGIC.length).equals(MAGIC)) parseHeader(headerBytes);
        throw new BackupError(
          'TRUNCATED',
          `snapshot.db.enc is ${head.length} bytes, shorter than its ${HEADER_LENGTH}-byte header: the file was truncated`,
          { read: head.length },
        );
      }
      if (filled < TAG_LENGTH) {
        // A segment is at least its tag; a full segment followed by fewer bytes was opened as
        // non-final above, so what is left here is a cut-off segment.
        const where = index === 0 && filled === 0 ? 'right after its header' : `inside segment ${index}`;
        throw new BackupError('TRUNCATED', `snapshot.db.enc ends ${where}: the file was truncated${this.sizeNote()}`, {
          segment: index,
          offset,
        });
      }
      const final = openOrFail([segment.subarray(0, filled)], true);
      const sha256 = running.digest();
      if (!sha256.equals(expect.sha256) || produced !== expect.plaintextSize) {
        // Authenticated but inconsistent: only a buggy writer produces this.
        zero(final);
        throw new BackupError(
          'SNAPSHOT_CORRUPT',
          'snapshot.db.enc decrypted and authenticated, but its plaintext hash or size differs from the authenticated values: the writer was faulty',
        );
      }
      this.sha256 = sha256;
      for (const piece of final) yield piece;
    } finally {
      segment.fill(0);
    }
  }
}
