// One backup: a fresh Transit data key, the snapshot streamed from its source through the
// segmented AEAD into a multipart upload, then dek.wrapped, then metadata.json LAST (its
// presence is what makes a prefix a backup). No plaintext on disk; memory ~ parts in flight.
import { isOpenBaoError } from '@kdc/shared/openbao';
import type { Logger, TransitClient } from '@kdc/shared';
import { BackupError, describeError } from './errors.ts';
import { kdfInfo, type BoundMetadata } from './format/kdf.ts';
import { ALGORITHM, DEFAULT_SEGMENT_SIZE, KDF_NAME, SCHEMA_VERSION, checkSegmentSize } from './format/spec.ts';
import { shrinkHeap } from './gc.ts';
import { ParallelEncryptor } from './parallel.ts';
import { sweepStaleUploads } from './inventory.ts';
import { ENVELOPE_OBJECTS, envelopePrefix } from './layout.ts';
import { serializeMetadata, type MetadataV2 } from './metadata.ts';
import type { SourceFactory } from './source.ts';
import type { BackupStore } from './store/store.ts';

/**
 * 8 MiB x 10,000 parts = 78 GiB objects; memory ~ (queue + 1) x part size (at least 3 parts). Two
 * parts in flight hold 16 MiB less than four (issue 15: peak RSS); an S3 far away may want more
 * (--upload-concurrency).
 */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_QUEUE_SIZE = 2;

export interface BackupOptions {
  store: BackupStore;
  /** Transit client carrying a token allowed datakey/plaintext on `transitKey`. */
  transit: TransitClient;
  transitKey: string;
  cluster: string;
  namespace: string;
  source: SourceFactory;
  segmentSize?: number;
  partSize?: number;
  queueSize?: number;
  /** Defaults to the current time (tests pin it). */
  now?: Date;
  logger?: Logger;
  progressIntervalMs?: number;
  /** How long to keep trying to abort the multipart upload after a failure. */
  abortRetryMs?: number;
  /** Abort multipart uploads under `<cluster>/` older than this before starting (crashed jobs). */
  staleUploadAgeMs?: number;
  /** Cancels the backup (SIGTERM): the upload is aborted and nothing is left listed. */
  signal?: AbortSignal;
}

export interface BackupResult {
  key: string;
  metadata: MetadataV2;
  durationMs: number;
}

/** Maps an OpenBao failure to a message that says what to fix. */
export function transitFailure(
  operation: 'datakey' | 'decrypt' | 'rewrap' | 'read',
  key: string,
  error: unknown,
): BackupError {
  if (error instanceof BackupError) return error;
  if (isOpenBaoError(error)) {
    const why = error.errors.join('; ') || `HTTP ${error.status}`;
    const path =
      operation === 'datakey'
        ? `datakey/plaintext/${key}`
        : operation === 'read'
          ? `keys/${key}`
          : `${operation}/${key}`;
    if (error.kind === 'denied') {
      return new BackupError(
        'IO_FAILED',
        `OpenBao refused transit/${path} (${error.status}): the token's policy must allow it (role backup-<cluster>)`,
        { status: error.status },
        { cause: error },
      );
    }
    if (
      error.kind === 'unavailable' ||
      error.kind === 'sealed' ||
      error.kind === 'server' ||
      error.kind === 'rate_limited'
    ) {
      return new BackupError(
        'IO_FAILED',
        `OpenBao is not available for transit/${path}: ${why}`,
        { status: error.status },
        { cause: error },
      );
    }
    if (/too old|disallowed by policy/i.test(why)) {
      return new BackupError(
        'WRONG_KEY',
        `Transit key ${key} no longer decrypts this key version (${why}): min_decryption_version was raised above it; rewrap backups before raising it`,
        { status: error.status },
        { cause: error },
      );
    }
    if (operation === 'decrypt' || operation === 'rewrap') {
      return new BackupError(
        'WRONG_KEY',
        `Transit key ${key} cannot unwrap this backup's data key (${why}): the wrapped key was made with another key, or metadata.json names the wrong transitKey`,
        { status: error.status },
        { cause: error },
      );
    }
    if (error.kind === 'not_found' || /not found/i.test(why)) {
      return new BackupError(
        'WRONG_KEY',
        `Transit key ${key} does not exist (${why})`,
        { status: error.status },
        { cause: error },
      );
    }
    return new BackupError(
      'IO_FAILED',
      `OpenBao transit/${path} failed: ${why}`,
      { status: error.status },
      { cause: error },
    );
  }
  return new BackupError(
    'IO_FAILED',
    `OpenBao transit/${operation} ${key} failed: ${describeError(error)}`,
    {},
    { cause: error },
  );
}

/** After a failed upload: abort whatever multipart upload is left for `key`, retrying while S3 is away. */
async function abortLeftovers(store: BackupStore, key: string, retryMs: number, logger?: Logger): Promise<boolean> {
  const deadline = Date.now() + retryMs;
  let delay = 250;
  for (;;) {
    try {
      const uploads = (await store.multipartUploads(key)).filter((u) => u.key === key);
      for (const u of uploads) await store.abortMultipart(u.key, u.uploadId);
      if (uploads.length)
        logger?.info({ key: store.url(key), aborted: uploads.length }, 'aborted the failed multipart upload');
      return true;
    } catch (error) {
      if (Date.now() + delay > deadline) {
        logger?.warn(
          { key: store.url(key), err: describeError(error) },
          'could not abort the multipart upload; the next backup run (or a bucket lifecycle rule) removes it',
        );
        return false;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 4000);
    }
  }
}

export async function runBackup(options: BackupOptions): Promise<BackupResult> {
  const started = performance.now();
  const { store, logger } = options;
  const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  checkSegmentSize(segmentSize);
  const createdAtDate = options.now ?? new Date();
  const createdAt = createdAtDate.toISOString();
  const prefix = envelopePrefix(options.cluster, createdAtDate);
  const snapshotKey = prefix + ENVELOPE_OBJECTS.snapshot;

  if (options.staleUploadAgeMs !== undefined) {
    const swept = await sweepStaleUploads(
      store,
      `${options.cluster}/`,
      new Date(createdAtDate.getTime() - options.staleUploadAgeMs),
    ).catch((error: unknown) => {
      logger?.warn({ err: describeError(error) }, 'could not sweep stale multipart uploads');
      return 0;
    });
    if (swept) logger?.info({ swept }, 'aborted stale multipart uploads of earlier runs');
  }
  if (await store.anyUnder(prefix)) {
    throw new BackupError(
      'BACKUP_EXISTS',
      `${store.url(prefix)} already exists (backups are named to the second): run again in a second`,
      { key: prefix },
    );
  }

  let datakey: Awaited<ReturnType<TransitClient['datakey']>>;
  try {
    datakey = await options.transit.datakey(options.transitKey, 'plaintext', { bits: 256 });
  } catch (error) {
    throw transitFailure('datakey', options.transitKey, error);
  }
  const bound: BoundMetadata = {
    schemaVersion: SCHEMA_VERSION,
    algorithm: ALGORITHM,
    transitKey: options.transitKey,
    createdAt,
    source: { cluster: options.cluster, namespace: options.namespace },
    segmentSize,
  };
  let encryptor: ParallelEncryptor;
  try {
    encryptor = new ParallelEncryptor({ dek: datakey.plaintext!, bound });
  } finally {
    datakey.plaintext?.fill(0);
  }

  const source = options.source(encryptor);
  logger?.info(
    {
      key: store.url(prefix),
      source: source.info.description,
      transitKey: options.transitKey,
      transitKeyVersion: datakey.keyVersion,
      segmentSize,
    },
    'backup started',
  );
  let pipelineError: unknown;
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  const queueSize = options.queueSize ?? DEFAULT_QUEUE_SIZE;
  async function* guarded(): AsyncGenerator<Buffer> {
    try {
      yield* source.chunks;
    } catch (error) {
      pipelineError ??= error;
      throw error;
    }
  }
  shrinkHeap();
  // The parts in flight and the one being filled: (queue + 1) x part size.
  const parts = encryptor.parts(guarded(), { partSize, parts: queueSize + 1 });
  const cancel = () => {
    pipelineError ??= new BackupError('IO_FAILED', 'backup cancelled (signal): nothing was kept');
    source.close();
    parts.stop(pipelineError);
  };
  if (options.signal?.aborted) cancel();
  options.signal?.addEventListener('abort', cancel, { once: true });
  let uploaded = 0;
  const progressEvery = options.progressIntervalMs ?? 10_000;
  let lastLog = performance.now();
  const progress = setInterval(() => {
    const seconds = (performance.now() - lastLog) / 1000;
    logger?.info(
      {
        plaintextBytes: encryptor.bytesIn,
        segments: encryptor.segments,
        uploadedBytes: uploaded,
        elapsedS: Math.round((performance.now() - started) / 1000),
        intervalS: Math.round(seconds),
      },
      'backup progress',
    );
    lastLog = performance.now();
  }, progressEvery);
  progress.unref();

  let stage = 'upload snapshot.db.enc';
  let wroteSnapshot = false;
  try {
    await store.uploadParts(snapshotKey, parts, { queueSize, onProgress: (bytes) => (uploaded = bytes) });
    wroteSnapshot = true;
    const result = encryptor.result;
    stage = 'verify the stored size';
    const stored = await store.head(snapshotKey);
    if (stored?.size !== result.ciphertextSize) {
      throw new BackupError(
        'IO_FAILED',
        `${store.url(snapshotKey)} is ${stored?.size ?? 'missing'} bytes after the upload, expected ${result.ciphertextSize}`,
      );
    }
    const metadata: MetadataV2 = {
      schemaVersion: SCHEMA_VERSION,
      algorithm: ALGORITHM,
      transitKey: options.transitKey,
      transitKeyVersion: datakey.keyVersion,
      wrappedDek: datakey.ciphertext,
      createdAt,
      source: { cluster: options.cluster, namespace: options.namespace },
      etcdSnapshotSha256: result.sha256.toString('hex'),
      segmentSize,
      plaintextSize: result.plaintextSize,
      ciphertextSize: result.ciphertextSize,
      kdf: { name: KDF_NAME, salt: encryptor.salt.toString('hex'), info: kdfInfo(bound) },
      ...(source.info.storageVersion || source.info.revision || source.info.databaseSize
        ? {
            etcd: {
              ...(source.info.storageVersion ? { storageVersion: source.info.storageVersion } : {}),
              ...(source.info.revision ? { revision: source.info.revision } : {}),
              ...(source.info.databaseSize !== undefined ? { databaseSize: source.info.databaseSize } : {}),
            },
          }
        : {}),
    };
    stage = 'write dek.wrapped';
    await store.putText(prefix + ENVELOPE_OBJECTS.wrappedDek, `${datakey.ciphertext}\n`, 'text/plain');
    stage = 'write metadata.json';
    await store.putText(prefix + ENVELOPE_OBJECTS.metadata, serializeMetadata(metadata), 'application/json');
    const durationMs = Math.round(performance.now() - started);
    logger?.info(
      {
        key: store.url(prefix),
        plaintextBytes: result.plaintextSize,
        ciphertextBytes: result.ciphertextSize,
        segments: result.segments,
        durationMs,
        mibPerS: Math.round((result.plaintextSize / 2 ** 20 / (durationMs / 1000)) * 10) / 10,
      },
      'backup complete',
    );
    return { key: prefix, metadata, durationMs };
  } catch (error) {
    source.close();
    parts.stop(error);
    const cause = pipelineError ?? error;
    logger?.error({ key: store.url(prefix), stage, err: describeError(cause) }, 'backup failed; cleaning up');
    if (!wroteSnapshot) await abortLeftovers(store, snapshotKey, options.abortRetryMs ?? 30_000, logger);
    // Nothing without metadata.json is a backup; remove what was written so no debris is left.
    // metadata.json goes first (a PUT that "failed" on a timeout may still have landed).
    try {
      if (stage === 'write metadata.json') await store.delete([prefix + ENVELOPE_OBJECTS.metadata]);
      await store.delete([snapshotKey, prefix + ENVELOPE_OBJECTS.wrappedDek]);
    } catch (e) {
      logger?.warn(
        { key: store.url(prefix), err: describeError(e) },
        'could not remove the partial backup objects (they are not listed as a backup)',
      );
    }
    if (cause instanceof BackupError) throw cause;
    throw new BackupError(
      'IO_FAILED',
      `backup ${store.url(prefix)} failed during "${stage}": ${describeError(cause)}`,
      { stage },
      { cause },
    );
  } finally {
    clearInterval(progress);
    options.signal?.removeEventListener('abort', cancel);
    await encryptor.close();
  }
}
