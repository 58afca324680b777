import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BackupError, type BackupErrorCode } from '../errors.ts';
import { StreamDecryptor, type DecryptExpectations } from './decrypt.ts';
import { StreamEncryptor } from './encrypt.ts';
import type { BoundMetadata } from './kdf.ts';
import { ALGORITHM, HEADER_LENGTH, SCHEMA_VERSION, TAG_LENGTH, ciphertextSizeFor } from './spec.ts';

const SEG = 64;
const DEK = randomBytes(32);

const bound = (over: Partial<BoundMetadata> = {}): BoundMetadata => ({
  schemaVersion: SCHEMA_VERSION,
  algorithm: ALGORITHM,
  transitKey: 'acme-shop-prod-etcd',
  createdAt: '2026-01-02T03:04:05.678Z',
  source: { cluster: 'prod', namespace: 'acme-shop' },
  segmentSize: SEG,
  ...over,
});

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function seal(plaintext: Buffer, options: { dek?: Buffer; bound?: BoundMetadata; chunk?: number } = {}) {
  const b = options.bound ?? bound();
  const enc = new StreamEncryptor({ dek: Buffer.from(options.dek ?? DEK), bound: b });
  const parts: Buffer[] = [];
  for await (const part of enc.encrypt(chunked(plaintext, options.chunk ?? 7))) parts.push(Buffer.from(part));
  const file = Buffer.concat(parts);
  const expect: DecryptExpectations = {
    bound: b,
    salt: enc.salt,
    sha256: enc.result.sha256,
    plaintextSize: enc.result.plaintextSize,
    ciphertextSize: enc.result.ciphertextSize,
  };
  return { file, expect, enc };
}

async function open(file: Buffer, expectations: DecryptExpectations, options: { dek?: Buffer; chunk?: number } = {}) {
  const decryptor = new StreamDecryptor({
    expect: expectations,
    unwrap: async () => Buffer.from(options.dek ?? DEK),
    storedSize: file.length,
  });
  const released: Buffer[] = [];
  try {
    for await (const piece of decryptor.decrypt(chunked(file, options.chunk ?? 13))) released.push(Buffer.from(piece));
    return { plaintext: Buffer.concat(released), error: undefined, released: Buffer.concat(released) };
  } catch (error) {
    return { plaintext: undefined, error: error as BackupError, released: Buffer.concat(released) };
  }
}

const segmentBytes = SEG + TAG_LENGTH;
const segmentAt = (i: number) => HEADER_LENGTH + i * segmentBytes;

describe('streaming AEAD round trip', () => {
  it.each([
    ['empty', 0],
    ['1 byte', 1],
    ['segment - 1', SEG - 1],
    ['exactly one segment', SEG],
    ['segment + 1', SEG + 1],
    ['exactly 3 segments', 3 * SEG],
    ['3 segments and a bit', 3 * SEG + 17],
  ])('%s (%i bytes)', async (_name, size) => {
    const plaintext = randomBytes(size);
    const { file, expect: e, enc } = await seal(plaintext);
    expect(file.length).toBe(ciphertextSizeFor(size, SEG));
    expect(enc.result.segments).toBe(Math.max(1, Math.ceil(size / SEG)));
    expect(enc.result.sha256.equals(createHash('sha256').update(plaintext).digest())).toBe(true);
    for (const chunk of [1, 13, segmentBytes, segmentBytes + 1, 1 << 20]) {
      const opened = await open(file, e, { chunk });
      expect(opened.error).toBeUndefined();
      expect(opened.plaintext!.equals(plaintext)).toBe(true);
    }
  });

  it('is independent of how the plaintext is chunked', async () => {
    const plaintext = randomBytes(5 * SEG + 3);
    const a = new StreamEncryptor({
      dek: Buffer.from(DEK),
      bound: bound(),
      salt: Buffer.alloc(32, 1),
      noncePrefix: Buffer.alloc(7, 2),
    });
    const b = new StreamEncryptor({
      dek: Buffer.from(DEK),
      bound: bound(),
      salt: Buffer.alloc(32, 1),
      noncePrefix: Buffer.alloc(7, 2),
    });
    const collect = async (g: AsyncGenerator<Buffer>) => {
      const out: Buffer[] = [];
      for await (const p of g) out.push(Buffer.from(p));
      return Buffer.concat(out);
    };
    expect((await collect(a.encrypt(chunked(plaintext, 1)))).equals(await collect(b.encrypt([plaintext])))).toBe(true);
  });

  it('uses a fresh salt and nonce prefix per file', async () => {
    const plaintext = randomBytes(100);
    const one = await seal(plaintext);
    const two = await seal(plaintext);
    expect(one.file.subarray(HEADER_LENGTH).equals(two.file.subarray(HEADER_LENGTH))).toBe(false);
    expect(one.enc.salt.equals(two.enc.salt)).toBe(false);
  });
});

describe('tampering is refused with a distinct error', () => {
  const plaintext = randomBytes(5 * SEG + 10); // 6 segments, the last one short
  const segments = 6;

  const refuse = async (
    file: Buffer,
    code: BackupErrorCode,
    options: { expect?: Partial<DecryptExpectations>; dek?: Buffer; message?: RegExp; releasedSegments?: number } = {},
  ) => {
    const { expect: e } = await base;
    const opened = await open(file, { ...e, ...options.expect }, options.dek ? { dek: options.dek } : {});
    expect(opened.error, 'must fail').toBeInstanceOf(BackupError);
    expect(opened.error!.code, opened.error!.message).toBe(code);
    if (options.message) expect(opened.error!.message).toMatch(options.message);
    // Only whole verified segments were released before the failure.
    expect(opened.released.length % SEG === 0 || opened.released.length === 0).toBe(true);
    if (options.releasedSegments !== undefined) expect(opened.released.length).toBe(options.releasedSegments * SEG);
    expect(opened.released.equals(plaintext.subarray(0, opened.released.length))).toBe(true);
    return opened.error!;
  };
  const base = seal(plaintext);
  const mutate = async (fn: (f: Buffer) => Buffer) => fn(Buffer.from((await base).file));
  const flip = (at: number) => (f: Buffer) => ((f[at]! ^= 0x01), f);

  it('a flipped byte inside a segment', async () => {
    const error = await refuse(await mutate(flip(segmentAt(2) + 5)), 'SEGMENT_TAMPERED', { releasedSegments: 2 });
    expect(error.details.segment).toBe(2);
  });
  it('a flipped byte in a tag', async () => {
    await refuse(await mutate(flip(segmentAt(1) + segmentBytes - 1)), 'SEGMENT_TAMPERED', { releasedSegments: 1 });
  });
  it('a flipped byte in the final segment (nothing of it is released)', async () => {
    await refuse(await mutate((f) => flip(f.length - 20)(f)), 'SEGMENT_TAMPERED', { releasedSegments: segments - 1 });
  });
  it('a flipped byte in the magic', async () => {
    await refuse(await mutate(flip(0)), 'HEADER_INVALID', { releasedSegments: 0 });
  });
  it('a flipped byte in the version', async () => {
    await refuse(await mutate(flip(8)), 'HEADER_INVALID');
  });
  it('a flipped byte in the segment size', async () => {
    await refuse(await mutate(flip(13)), 'METADATA_MISMATCH', { message: /segments/ });
  });
  it('a flipped byte in the salt', async () => {
    await refuse(await mutate(flip(20)), 'METADATA_MISMATCH', { message: /salt/ });
  });
  it('a flipped byte in the nonce prefix', async () => {
    await refuse(await mutate(flip(50)), 'SEGMENT_TAMPERED', { releasedSegments: 0 });
  });
  it('a flipped byte in the key check', async () => {
    await refuse(await mutate(flip(HEADER_LENGTH - 1)), 'METADATA_ALTERED', { message: /key check/ });
  });
  it('truncation at a segment boundary', async () => {
    await refuse(await mutate((f) => f.subarray(0, segmentAt(3))), 'TRUNCATED', { message: /after segment 2/ });
  });
  it('truncation inside a segment', async () => {
    await refuse(await mutate((f) => f.subarray(0, segmentAt(3) + 40)), 'TRUNCATED', { message: /inside segment 3/ });
  });
  it('truncation leaving less than a tag', async () => {
    await refuse(await mutate((f) => f.subarray(0, segmentAt(3) + 5)), 'TRUNCATED');
  });
  it('truncation inside the header, and an empty file', async () => {
    await refuse(await mutate((f) => f.subarray(0, 40)), 'TRUNCATED', { message: /header/ });
    await refuse(Buffer.alloc(0), 'TRUNCATED');
    await refuse(await mutate((f) => f.subarray(0, HEADER_LENGTH)), 'TRUNCATED', { message: /right after its header/ });
  });
  it('two segments swapped', async () => {
    const error = await refuse(
      await mutate((f) =>
        Buffer.concat([
          f.subarray(0, segmentAt(1)),
          f.subarray(segmentAt(2), segmentAt(3)),
          f.subarray(segmentAt(1), segmentAt(2)),
          f.subarray(segmentAt(3)),
        ]),
      ),
      'SEGMENT_REORDERED',
      { releasedSegments: 1 },
    );
    expect(error.details).toMatchObject({ segment: 1, found: 2 });
  });
  it('a segment duplicated', async () => {
    const error = await refuse(
      await mutate((f) =>
        Buffer.concat([f.subarray(0, segmentAt(2)), f.subarray(segmentAt(1), segmentAt(2)), f.subarray(segmentAt(2))]),
      ),
      'SEGMENT_DUPLICATED',
      { releasedSegments: 2 },
    );
    expect(error.details).toMatchObject({ segment: 2, found: 1 });
  });
  it('a segment dropped from the middle', async () => {
    await refuse(
      await mutate((f) => Buffer.concat([f.subarray(0, segmentAt(2)), f.subarray(segmentAt(3))])),
      'SEGMENT_REORDERED',
      { releasedSegments: 2 },
    );
  });
  it('bytes appended after the final segment', async () => {
    await refuse(await mutate((f) => Buffer.concat([f, Buffer.from('extra')])), 'TRAILING_DATA');
    await refuse(await mutate((f) => Buffer.concat([f, randomBytes(segmentBytes * 2)])), 'TRAILING_DATA');
  });
  it('a full final segment followed by appended bytes', async () => {
    const full = randomBytes(3 * SEG);
    const { file, expect: e } = await seal(full);
    const opened = await open(Buffer.concat([file, Buffer.from('x')]), e);
    expect(opened.error?.code).toBe('TRAILING_DATA');
    expect(opened.error?.message).toMatch(/segment 2 is the final segment/);
  });
  it('metadata from another backup (its salt, its data key)', async () => {
    const other = await seal(randomBytes(200));
    const otherDek = randomBytes(32);
    await refuse((await base).file, 'METADATA_MISMATCH', {
      expect: other.expect,
      dek: otherDek,
      message: /another backup/,
    });
  });
  it("another data key with this file's salt", async () => {
    await refuse((await base).file, 'METADATA_ALTERED', { dek: randomBytes(32), message: /wrappedDek/ });
  });
  it('a bound field changed (cluster, namespace, createdAt, transitKey)', async () => {
    for (const change of [
      { source: { cluster: 'other', namespace: 'acme-shop' } },
      { source: { cluster: 'prod', namespace: 'x' } },
      { createdAt: '2026-01-02T03:04:06.678Z' },
      { transitKey: 'other-key' },
    ]) {
      await refuse((await base).file, 'METADATA_ALTERED', { expect: { bound: bound(change) } });
    }
  });
  it('an edited plaintext hash or size in metadata', async () => {
    const e = (await base).expect;
    const wrongHash = Buffer.from(e.sha256);
    wrongHash[0]! ^= 1;
    await refuse((await base).file, 'METADATA_ALTERED', {
      expect: { sha256: wrongHash },
      releasedSegments: segments - 1,
      message: /etcdSnapshotSha256/,
    });
    await refuse((await base).file, 'METADATA_ALTERED', { expect: { plaintextSize: e.plaintextSize - 1 } });
  });
  it('a wrong-size data key', async () => {
    await refuse((await base).file, 'WRONG_KEY', { dek: randomBytes(16) });
  });
});
