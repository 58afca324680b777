import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { StreamEncryptor } from '../format/encrypt.ts';
import { kdfInfo, type BoundMetadata } from '../format/kdf.ts';
import { ALGORITHM, HEADER_LENGTH, KDF_NAME, SCHEMA_VERSION } from '../format/spec.ts';
import type { MetadataV1, MetadataV2 } from '../metadata.ts';
import type { ObjectStream } from '../store/objects.ts';
import { decoderFor, transitUnwrap, type DecodeIo, type Decoder } from './decode.ts';
import type { Located } from './locate.ts';

const DEK = randomBytes(32);
const SEG = 64;
const KEY = 'prod/prod-20260304T050607Z/';
const SNAPSHOT = `${KEY}snapshot.db.enc`;

const stream = (bytes: Buffer): ObjectStream => ({
  body: Readable.from([bytes.subarray(0, 50), bytes.subarray(50)]),
  size: bytes.length,
  etag: undefined,
});

async function sealV2(plaintext: Buffer): Promise<{ file: Buffer; metadata: MetadataV2 }> {
  const bound: BoundMetadata = {
    schemaVersion: SCHEMA_VERSION,
    algorithm: ALGORITHM,
    transitKey: 'ns-prod-etcd',
    createdAt: '2026-03-04T05:06:07.890Z',
    source: { cluster: 'prod', namespace: 'ns' },
    segmentSize: SEG,
  };
  const enc = new StreamEncryptor({ dek: Buffer.from(DEK), bound });
  const parts: Buffer[] = [];
  for await (const part of enc.encrypt([plaintext])) parts.push(Buffer.from(part));
  const file = Buffer.concat(parts);
  return {
    file,
    metadata: {
      schemaVersion: 2,
      algorithm: ALGORITHM,
      transitKey: bound.transitKey,
      transitKeyVersion: 1,
      wrappedDek: 'vault:v1:QUJD',
      createdAt: bound.createdAt,
      source: bound.source,
      etcdSnapshotSha256: enc.result.sha256.toString('hex'),
      segmentSize: SEG,
      plaintextSize: enc.result.plaintextSize,
      ciphertextSize: enc.result.ciphertextSize,
      kdf: { name: KDF_NAME, salt: enc.salt.toString('hex'), info: kdfInfo(bound) },
    },
  };
}

// A schemaVersion 1 file, the way the single-seal writer made it.
function sealV1(plaintext: Buffer): { file: Buffer; metadata: MetadataV1 } {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', DEK, nonce);
  return {
    file: Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]),
    metadata: {
      schemaVersion: 1,
      algorithm: 'AES-256-GCM',
      transitKey: 'ns-prod-etcd',
      transitKeyVersion: 1,
      wrappedDek: 'vault:v1:QUJD',
      createdAt: '2026-03-04T05:06:07.890Z',
      etcdSnapshotSha256: createHash('sha256').update(plaintext).digest('hex'),
    },
  };
}

function io(file: Buffer = Buffer.alloc(0)) {
  const unwrap = vi.fn(async () => Buffer.from(DEK));
  const io: DecodeIo = {
    unwrap,
    store: {
      url: (key) => `s3://b/${key}`,
      getRange: async (_key, start, end, into) => void file.copy(into, 0, start, end),
      getStream: async () => stream(file),
    },
  };
  return { io, unwrap };
}

async function drain(decoder: Decoder): Promise<Buffer> {
  if (decoder.ranged) throw new Error('a streaming decoder was expected');
  const out: Buffer[] = [];
  for await (const piece of decoder.transform(decoder.object.body)) out.push(Buffer.from(piece));
  return Buffer.concat(out);
}

const located = (over: Partial<Located> & Pick<Located, 'read'>): Located => ({
  key: KEY,
  metadata: undefined,
  snapshotKey: SNAPSHOT,
  storedSize: undefined,
  ...over,
});

const dir = mkdtempSync(join(tmpdir(), 'decode-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The ranged path starts crypto worker threads: seconds on a loaded machine, so those tests wait longer.
describe('decoderFor: the format version to its reader', () => {
  const plaintext = randomBytes(5 * SEG + 10);

  it('a plaintext .db (schemaVersion 0) passes through, counted', async () => {
    const decoder = decoderFor(located({ read: { ranged: false, object: stream(plaintext) } }), io().io);
    expect(decoder).toMatchObject({ schemaVersion: 0, ranged: false });
    expect((await drain(decoder)).equals(plaintext)).toBe(true);
    expect(decoder.verified).toEqual({ plaintextSize: plaintext.length });
    expect(decoder.progress()).toBe(plaintext.length);
  });

  it('schemaVersion 1: the data key is unwrapped when the reading starts, not when the decoder is chosen', async () => {
    const { file, metadata } = sealV1(plaintext);
    const { io: deps, unwrap } = io();
    const decoder = decoderFor(located({ metadata, read: { ranged: false, object: stream(file) } }), deps);
    expect(decoder).toMatchObject({ schemaVersion: 1, ranged: false });
    expect(unwrap).not.toHaveBeenCalled();
    expect((await drain(decoder)).equals(plaintext)).toBe(true);
    expect(unwrap).toHaveBeenCalledTimes(1);
    expect(decoder.verified.plaintextSize).toBe(plaintext.length);
    expect(decoder.verified.sha256?.toString('hex')).toBe(metadata.etcdSnapshotSha256);
  });

  it('schemaVersion 2, streamed', async () => {
    const { file, metadata } = await sealV2(plaintext);
    const { io: deps, unwrap } = io();
    const decoder = decoderFor(
      located({ metadata, storedSize: file.length, read: { ranged: false, object: stream(file) } }),
      deps,
    );
    expect(decoder).toMatchObject({ schemaVersion: 2, ranged: false });
    expect(unwrap).not.toHaveBeenCalled();
    expect((await drain(decoder)).equals(plaintext)).toBe(true);
    expect(decoder.verified.sha256?.toString('hex')).toBe(metadata.etcdSnapshotSha256);
  });

  it('schemaVersion 2, ranged: verified plaintext at its offsets in the file', { timeout: 30_000 }, async () => {
    const { file, metadata } = await sealV2(plaintext);
    const { io: deps, unwrap } = io(file);
    const decoder = decoderFor(located({ metadata, storedSize: file.length, read: { ranged: true } }), deps);
    expect(decoder).toMatchObject({ schemaVersion: 2, ranged: true });
    expect(unwrap).not.toHaveBeenCalled();
    if (!decoder.ranged) throw new Error('ranged');
    const path = join(dir, 'ranged.db');
    const handle = await open(path, 'wx');
    try {
      await decoder.writeTo(handle);
    } finally {
      await handle.close();
    }
    expect(readFileSync(path).equals(plaintext)).toBe(true);
    expect(decoder.verified).toEqual({
      plaintextSize: plaintext.length,
      sha256: Buffer.from(metadata.etcdSnapshotSha256, 'hex'),
    });
    expect(decoder.progress()).toBe(plaintext.length);
  });

  it('schemaVersion 2, ranged: a failed segment is named by the streaming reader', { timeout: 30_000 }, async () => {
    const { file, metadata } = await sealV2(plaintext);
    file[HEADER_LENGTH + (SEG + 16) * 2 + 3]! ^= 1;
    const decoder = decoderFor(located({ metadata, storedSize: file.length, read: { ranged: true } }), io(file).io);
    if (!decoder.ranged) throw new Error('ranged');
    const handle = await open(join(dir, 'tampered.db'), 'wx');
    try {
      await expect(decoder.writeTo(handle)).rejects.toMatchObject({
        code: 'SEGMENT_TAMPERED',
        details: { segment: 2 },
      });
    } finally {
      await handle.close();
    }
  });

  it('only schemaVersion 2 is read in ranges', () => {
    expect(() => decoderFor(located({ read: { ranged: true } }), io().io)).toThrow(/only a schemaVersion 2/);
  });
});

describe('transitUnwrap', () => {
  it('without a Transit client an envelope cannot be opened: WRONG_KEY', async () => {
    const { metadata } = sealV1(Buffer.alloc(1));
    await expect(transitUnwrap(undefined)(metadata)).rejects.toMatchObject({ code: 'WRONG_KEY' });
  });
});
