import { createDecipheriv, createHash, timingSafeEqual, type KeyObject } from 'node:crypto';
import { BackupError } from '../errors.ts';
import { parseHeader, type Header } from './header.ts';
import { deriveKeys, kdfInfo, type BoundMetadata } from './kdf.ts';
import { finalAad, segmentNonce } from './segment.ts';
import { HEADER_LENGTH, MAGIC, MAX_SEGMENTS, TAG_LENGTH, checkPlaintextSize, checkSegmentSize } from './spec.ts';

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
