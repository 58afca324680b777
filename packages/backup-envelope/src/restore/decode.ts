// Step two of a restore: from the format version to the reader that verifies and decrypts it.
// Choosing does no I/O: the data key is unwrapped only once the snapshot is being read, so a
// restore refused earlier never calls Transit.
import type { FileHandle } from 'node:fs/promises';
import type { TransitClient } from '@kdc/shared';
import { transitFailure } from '../backup.ts';
import { BackupError } from '../errors.ts';
import { StreamDecryptor, type DecryptorOptions } from '../format/decrypt.ts';
import { V1Decryptor } from '../legacy.ts';
import { decryptExpectation, type BackupMetadata, type MetadataV1, type MetadataV2 } from '../metadata.ts';
import type { ObjectStream } from '../store/objects.ts';
import type { BackupStore } from '../store/store.ts';
import { snapshotMissing, type Located } from './locate.ts';
import { restoreRanged } from './ranged.ts';

/** What the last byte proved; filled in once the decoder has finished. */
export interface Verified {
  plaintextSize: number;
  sha256?: Buffer;
}

interface Decoding {
  schemaVersion: 0 | 1 | 2;
  /** Plaintext bytes so far, for the progress lines. */
  progress(): number;
  readonly verified: Verified;
}

export type Decoder = Decoding &
  (
    | { ranged: false; object: ObjectStream; transform: (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> }
    | {
        ranged: true;
        /** Reads the object itself and writes the verified plaintext at its offsets in `handle`. */
        writeTo(handle: FileHandle): Promise<void>;
      }
  );

export type Unwrap = (metadata: BackupMetadata) => Promise<Buffer>;

export interface DecodeIo {
  store: Pick<BackupStore, 'url' | 'getRange' | 'getStream'>;
  unwrap: Unwrap;
  signal?: AbortSignal;
}

/** The data key of a backup, unwrapped by Transit; a restore without a Transit client cannot have it. */
export function transitUnwrap(transit: TransitClient | undefined): Unwrap {
  return async (m) => {
    if (!transit)
      throw new BackupError(
        'WRONG_KEY',
        'restoring an envelope backup needs an OpenBao token allowed to decrypt with its Transit key',
      );
    try {
      return await transit.decrypt(m.transitKey, m.wrappedDek);
    } catch (error) {
      throw transitFailure('decrypt', m.transitKey, error);
    }
  };
}

export function decoderFor(located: Located, io: DecodeIo): Decoder {
  const { metadata, read } = located;
  if (metadata?.schemaVersion === 2) return envelopeDecoder(located, metadata, io);
  if (read.ranged) throw new Error(`${located.snapshotKey}: only a schemaVersion 2 snapshot is read in ranges`);
  return metadata ? singleSealDecoder(metadata, read.object, io.unwrap) : plaintextDecoder(read.object);
}

/** schemaVersion 0, a plaintext `.db`: passed through as it is, counted. */
function plaintextDecoder(object: ObjectStream): Decoder {
  let n = 0;
  const verified: Verified = { plaintextSize: 0 };
  return {
    schemaVersion: 0,
    ranged: false,
    object,
    verified,
    progress: () => n,
    transform: async function* (source) {
      for await (const chunk of source) {
        n += chunk.length;
        yield chunk;
      }
      verified.plaintextSize = n;
    },
  };
}

/** schemaVersion 1: one tag over the whole file, so nothing is verified before the end. */
function singleSealDecoder(m: MetadataV1, object: ObjectStream, unwrap: Unwrap): Decoder {
  let decryptor: V1Decryptor | undefined;
  const verified: Verified = { plaintextSize: 0 };
  return {
    schemaVersion: 1,
    ranged: false,
    object,
    verified,
    progress: () => decryptor?.plaintextSize ?? 0,
    transform: async function* (source) {
      decryptor = new V1Decryptor({
        dek: await unwrap(m),
        ...(m.etcdSnapshotSha256 ? { sha256: Buffer.from(m.etcdSnapshotSha256, 'hex') } : {}),
      });
      yield* decryptor.decrypt(source);
      verified.plaintextSize = decryptor.plaintextSize;
      verified.sha256 = decryptor.sha256;
    },
  };
}

/** schemaVersion 2: streamed segment by segment, or read in ranges when the object's size is right. */
function envelopeDecoder(located: Located, m: MetadataV2, io: DecodeIo): Decoder {
  const { snapshotKey, storedSize, read } = located;
  const options: DecryptorOptions = {
    expect: decryptExpectation(m),
    unwrap: () => io.unwrap(m),
    ...(storedSize !== undefined ? { storedSize } : {}),
  };
  const decryptor = new StreamDecryptor(options);
  const verified: Verified = { plaintextSize: 0 };
  const common = { schemaVersion: 2 as const, verified, progress: () => decryptor.plaintextSize };
  if (!read.ranged)
    return {
      ...common,
      ranged: false,
      object: read.object,
      transform: async function* (source) {
        yield* decryptor.decrypt(source);
        verified.plaintextSize = decryptor.plaintextSize;
        verified.sha256 = decryptor.sha256;
      },
    };
  return {
    ...common,
    ranged: true,
    async writeTo(handle) {
      const result = await restoreRanged({
        store: io.store,
        key: snapshotKey,
        metadata: m,
        decryptor,
        handle,
        ...(io.signal ? { signal: io.signal } : {}),
      });
      if (!result) {
        // Name the problem exactly as the streaming reader does: read it again, writing nothing.
        const again = await io.store.getStream(snapshotKey);
        if (!again) throw snapshotMissing(io.store, snapshotKey, true);
        try {
          for await (const piece of new StreamDecryptor(options).decrypt(again.body)) piece.fill(0);
        } finally {
          again.body.destroy();
        }
        throw new BackupError(
          'SEGMENT_TAMPERED',
          'a segment of snapshot.db.enc failed authentication on a ranged read but not on a full read: the object changed during the restore',
        );
      }
      verified.plaintextSize = result.plaintextSize;
      verified.sha256 = result.sha256;
    },
  };
}
