// Restore: check metadata.json against what is being restored, then ONE streaming pass that
// downloads, verifies and decrypts each segment into a 0600 temp file next to the destination.
// Only after the final segment and the whole-plaintext SHA-256 verified is the file renamed into
// place (or handed to `etcdutl snapshot restore`, whose data dir is renamed into place). Any
// failure removes the temp files: the destination is never created or touched.
//
// Why one pass with a temp file rather than verify-then-decrypt: one download instead of two,
// and with the segmented format nothing unauthenticated is ever written (each segment is
// verified before its plaintext leaves memory); the temp file only holds a verified prefix until
// the end. (A schemaVersion 1 file has a single tag, so its temp file holds unverified plaintext
// until the end; it is 0600, and removed on failure.)
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, link, mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger, TransitClient } from '@kdc/shared';
import { transitFailure } from './backup.ts';
import { BackupError, describeError } from './errors.ts';
import { StreamDecryptor } from './format/decrypt.ts';
import { finalAad } from './format/segment.ts';
import { HEADER_LENGTH, TAG_LENGTH, segmentCount } from './format/spec.ts';
import { BufferPool, CryptoWorker } from './parallel.ts';
import { ENVELOPE_OBJECTS, parseBackupKey } from './layout.ts';
import { V1Decryptor } from './legacy.ts';
import { boundOf, parseMetadata, type BackupMetadata, type MetadataV2 } from './metadata.ts';
import type { ObjectStream } from './store/objects.ts';
import type { BackupStore } from './store/store.ts';

export type RestoreDestination =
  | { kind: 'file'; path: string }
  | {
      kind: 'data-dir';
      path: string;
      /** etcdutl binary (default: `etcdutl` on PATH). */
      etcdutl?: string;
      name?: string;
      initialCluster?: string;
      initialAdvertisePeerUrls?: string;
      /** Raise the revision (and mark it compacted) so watchers of the restored etcd resync. */
      bumpRevision?: number;
    };

export interface RestoreOptions {
  store: BackupStore;
  /** Transit client allowed decrypt on the backup's key (not needed for plaintext .db backups). */
  transit?: TransitClient;
  /** The cluster being restored; the backup must be one of its own. */
  cluster: string;
  /** The cluster's project namespace: a backup recorded for another namespace is refused. */
  namespace?: string;
  /**
   * Restore a plaintext `.db` file. Nothing authenticates one (anyone who can write to the
   * bucket can put it there), so it is refused unless a person named it and confirmed.
   */
  allowUnauthenticated?: boolean;
  /** `<cluster>/<cluster>-<timestamp>/` (envelope) or `...<timestamp>.db` (plaintext). */
  key: string;
  /** When given, the backup's transitKey must be this one. */
  expectedTransitKey?: string;
  destination: RestoreDestination;
  logger?: Logger;
  progressIntervalMs?: number;
  /** Cancels the restore (SIGTERM): temp files are removed, the destination is not touched. */
  signal?: AbortSignal;
}

export interface RestoreResult {
  key: string;
  schemaVersion: 0 | 1 | 2;
  plaintextSize: number;
  sha256?: string;
  destination: string;
  durationMs: number;
}

async function isEmptyOrAbsent(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    if (!s.isDirectory()) return false;
    return (await readdir(path)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function runEtcdutl(binary: string, args: string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(binary, args, { maxBuffer: 16 * 1024 * 1024, ...(signal ? { signal } : {}) }, (error, stdout, stderr) => {
      if (!error) return resolvePromise(`${stdout}${stderr}`);
      const tail = `${stderr}${stdout}`.trim().split('\n').slice(-6).join('\n');
      const how =
        (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? `${binary} not found: install etcdutl or pass --etcdutl`
          : `exit ${error.code ?? error.signal}`;
      reject(
        new BackupError(
          'IO_FAILED',
          `etcdutl snapshot restore failed (${how})${tail ? `:\n${tail}` : ''}`,
          {},
          { cause: error },
        ),
      );
    });
  });
}

/**
 * Checks metadata.json against the restore request (before any download or Transit call). For
 * schemaVersion 2 the source is bound into the key derivation, so the key check that follows
 * proves it; a version-1 source is only compared when recorded.
 */
export function checkRestoreTarget(
  metadata: BackupMetadata,
  key: string,
  cluster: string,
  expectedTransitKey?: string,
  expectedNamespace?: string,
): void {
  const recorded = metadata.schemaVersion === 2 ? metadata.source.cluster : metadata.source?.cluster;
  if (recorded !== undefined && recorded !== cluster) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${key} is a backup of cluster "${recorded}" (metadata.json source.cluster), not of "${cluster}": refusing a cross-cluster restore`,
      { recorded, cluster },
    );
  }
  const namespace = metadata.schemaVersion === 2 ? metadata.source.namespace : metadata.source?.namespace;
  if (expectedNamespace !== undefined && namespace !== undefined && namespace !== expectedNamespace) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${key} is a backup of cluster "${cluster}" in namespace "${namespace}" (metadata.json source.namespace), not in "${expectedNamespace}": a same-named cluster of another project; refusing it`,
      { recorded: namespace, namespace: expectedNamespace },
    );
  }
  if (expectedTransitKey !== undefined && metadata.transitKey !== expectedTransitKey) {
    throw new BackupError(
      'WRONG_KEY',
      `${key} is wrapped with Transit key "${metadata.transitKey}", but this cluster's backup key is "${expectedTransitKey}": refusing it`,
      { recorded: metadata.transitKey, expected: expectedTransitKey },
    );
  }
}

/** Ciphertext per ranged GET (whole segments), how many GETs run at once, and the memory they may hold. */
const RANGE_BYTES = 8 * 1024 * 1024;
const DOWNLOAD_CONCURRENCY = 4;
const RANGE_MEMORY = 48 * 1024 * 1024;

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** How the ranged path cuts a file: whole segments per range and how many range buffers exist. Pure. */
export function rangePlan(
  segmentSize: number,
  plaintextSize: number,
): { segmentBytes: number; count: number; perRange: number; ranges: number; buffers: number; bufferBytes: number } {
  const segmentBytes = segmentSize + TAG_LENGTH;
  const count = segmentCount(plaintextSize, segmentSize);
  const perRange = Math.max(1, Math.floor(RANGE_BYTES / segmentBytes));
  const bufferBytes = Math.min(perRange, count) * segmentBytes;
  // Large segments: fewer buffers, never fewer than two (one downloading while one decrypts).
  const buffers = Math.max(2, Math.min(DOWNLOAD_CONCURRENCY + 2, Math.floor(RANGE_MEMORY / bufferBytes)));
  return { segmentBytes, count, perRange, ranges: Math.ceil(count / perRange), buffers, bufferBytes };
}

/**
 * The schemaVersion 2 fast path, for a stored object of exactly the size metadata.json names.
 * First the 85-byte header alone: it is checked against metadata.json and the data key is
 * unwrapped and checked, so nothing is sized from metadata.json before the key authenticated it.
 * Then ranged GETs of whole segments run in parallel into a few reused buffers; a worker thread
 * verifies, decrypts and hashes them in order; each range's verified plaintext is written with one
 * positional write. The last range is written only after the final segment's tag (which covers
 * the whole-plaintext hash) and the hash itself verified. Returns false at the first segment
 * that fails, with nothing of it written: the caller then names the problem.
 */
async function restoreRanged(args: {
  store: BackupStore;
  key: string;
  metadata: MetadataV2;
  decryptor: StreamDecryptor;
  handle: FileHandle;
  signal?: AbortSignal;
}): Promise<{ sha256: Buffer; plaintextSize: number } | false> {
  const { store, key, metadata: m, decryptor, handle } = args;
  const headerBytes = Buffer.alloc(HEADER_LENGTH);
  await store.getRange(key, 0, HEADER_LENGTH, headerBytes, args.signal);
  const opened = await decryptor.openHeader(headerBytes);
  const header = opened.header.bytes;
  const plan = rangePlan(m.segmentSize, m.plaintextSize);
  const { segmentBytes, count, perRange, ranges } = plan;
  const rangeOf = (j: number) => {
    const first = j * perRange;
    const n = Math.min(perRange, count - first);
    return {
      first,
      n,
      start: HEADER_LENGTH + first * segmentBytes,
      end: Math.min(HEADER_LENGTH + (first + n) * segmentBytes, m.ciphertextSize),
    };
  };
  // Plain (not shared) buffers: each is handed to the worker and back (transferred, not copied).
  const pool = new BufferPool(plan.bufferBytes, plan.buffers);
  // Only the ranges in flight have a slot: the window is as large as the pool.
  const ready = new Map<number, ReturnType<typeof deferred<{ buffer: Buffer; view: Buffer }>>>();
  const slot = (j: number) => {
    let d = ready.get(j);
    if (!d) ready.set(j, (d = deferred()));
    return d;
  };
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  args.signal?.addEventListener('abort', onAbort, { once: true });
  let stopped = false;
  const launcher = (async () => {
    for (let j = 0; j < ranges && !stopped; j++) {
      const buffer = await pool.take();
      if (stopped) return;
      const r = rangeOf(j);
      const view = buffer.subarray(0, r.end - r.start);
      const d = slot(j);
      store.getRange(key, r.start, r.end, view, controller.signal).then(() => d.resolve({ buffer, view }), d.reject);
    }
  })();
  const worker = new CryptoWorker(opened.key, opened.header.noncePrefix, header);
  let writing: Promise<unknown> = Promise.resolve();
  try {
    let position = 0;
    for (let j = 0; j < ranges; j++) {
      if (args.signal?.aborted) throw new BackupError('IO_FAILED', 'restore cancelled (signal)');
      const { view } = await slot(j).promise;
      ready.delete(j);
      const r = rangeOf(j);
      const last = j === ranges - 1;
      const request = {
        buf: view.buffer as ArrayBuffer,
        offset: 0,
        length: view.length,
        count: r.n,
        index: r.first,
        segmentBytes,
        ...(last ? { finalAad: finalAad(header, Buffer.from(m.etcdSnapshotSha256, 'hex'), m.plaintextSize) } : {}),
      };
      const reply = await worker.request('open', request, [request.buf]);
      const buffer = Buffer.from(reply.buf!);
      if (reply.failed !== undefined) {
        pool.give(buffer);
        return false;
      }
      const length = reply.plainLength!;
      decryptor.plaintextSize += length;
      decryptor.segments = r.first + r.n;
      if (
        last &&
        (!Buffer.from(reply.sha256!).equals(Buffer.from(m.etcdSnapshotSha256, 'hex')) || reply.size !== m.plaintextSize)
      ) {
        buffer.fill(0);
        throw new BackupError(
          'SNAPSHOT_CORRUPT',
          'snapshot.db.enc decrypted and authenticated, but its plaintext hash or size differs from the authenticated values: the writer was faulty',
        );
      }
      const at = position;
      position += length;
      await writing;
      writing = (async () => {
        for (let done = 0; done < length;)
          done += (await handle.write(buffer, done, length - done, at + done)).bytesWritten;
        pool.give(buffer);
      })();
    }
    await writing;
    return { sha256: Buffer.from(m.etcdSnapshotSha256, 'hex'), plaintextSize: position };
  } finally {
    stopped = true;
    controller.abort();
    args.signal?.removeEventListener('abort', onAbort);
    await writing.catch(() => undefined);
    await worker.close();
    pool.give(Buffer.alloc(0));
    await launcher.catch(() => undefined);
    pool.wipe();
  }
}

/** The refusal of a plaintext file nobody confirmed. */
export function unauthenticated(url: string): BackupError {
  return new BackupError(
    'UNAUTHENTICATED_BACKUP',
    `${url} is a plaintext snapshot: nothing authenticates it, anyone who can write to the bucket could have put it there. Restore it only when you know where it came from, and say so (kdc-backup restore --allow-unauthenticated; docs/runbook.md)`,
    { key: url },
  );
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const { store, logger, destination } = options;
  const parsed = parseBackupKey(options.key);
  if (!parsed)
    throw new BackupError(
      'NOT_FOUND',
      `"${options.key}" is not a backup key: expected <cluster>/<cluster>-<YYYYMMDDTHHMMSSZ>/ or .../<cluster>-<YYYYMMDDTHHMMSSZ>.db`,
    );
  if (parsed.cluster !== options.cluster) {
    throw new BackupError(
      'WRONG_CLUSTER',
      `${options.key} is a backup of cluster "${parsed.cluster}", not of "${options.cluster}": refusing a cross-cluster restore`,
      { recorded: parsed.cluster, cluster: options.cluster },
    );
  }
  if (parsed.kind === 'plaintext' && !options.allowUnauthenticated) throw unauthenticated(store.url(options.key));

  // The destination must be absent (or an empty directory, for a data dir).
  const target = resolve(destination.path);
  if (destination.kind === 'data-dir' ? !(await isEmptyOrAbsent(target)) : await exists(target)) {
    throw new BackupError(
      'DESTINATION_NOT_EMPTY',
      `${target} ${destination.kind === 'data-dir' ? 'is not an empty directory' : 'already exists'}: restore only into a fresh ${destination.kind === 'data-dir' ? 'data dir' : 'file'}`,
      { destination: target },
    );
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true, mode: 0o700 });

  let metadata: BackupMetadata | undefined;
  let snapshotKey: string;
  if (parsed.kind === 'envelope') {
    const text = await store.getText(options.key + ENVELOPE_OBJECTS.metadata);
    if (!text) {
      if (await store.anyUnder(options.key))
        throw new BackupError(
          'INCOMPLETE_BACKUP',
          `${store.url(options.key)} has no metadata.json: the backup never completed; it cannot be restored`,
          { key: options.key },
        );
      throw new BackupError('NOT_FOUND', `${store.url(options.key)} does not exist`, { key: options.key });
    }
    metadata = parseMetadata(text.text, options.key);
    checkRestoreTarget(metadata, options.key, options.cluster, options.expectedTransitKey, options.namespace);
    snapshotKey = options.key + ENVELOPE_OBJECTS.snapshot;
  } else {
    snapshotKey = options.key;
  }

  const missing = () =>
    new BackupError(
      metadata ? 'INCOMPLETE_BACKUP' : 'NOT_FOUND',
      `${store.url(snapshotKey)} does not exist${metadata ? ': metadata.json without its snapshot cannot be restored' : ''}`,
      { key: snapshotKey },
    );
  // A version-2 object of exactly the size metadata.json names takes the parallel ranged path;
  // anything else (older formats, a size that already says truncated or appended) one stream.
  let object: ObjectStream | null = null;
  let storedSize: number | undefined;
  let ranged = false;
  if (metadata?.schemaVersion === 2) {
    const stored = await store.head(snapshotKey);
    if (!stored) throw missing();
    storedSize = stored.size;
    ranged = stored.size === metadata.ciphertextSize;
  }
  if (!ranged) {
    object = await store.getStream(snapshotKey);
    if (!object) throw missing();
    storedSize = object.size;
  }

  const tag = `.${basename(target)}.restore-${randomBytes(4).toString('hex')}`;
  const tempFile = join(parent, `${tag}.snapshot.db`);
  const tempDataDir = join(parent, `${tag}.data`);
  let cleanFile = true;
  const transit = options.transit;
  const unwrap = async (m: BackupMetadata): Promise<Buffer> => {
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

  let decrypted: { plaintextSize: number; sha256?: Buffer; schemaVersion: 0 | 1 | 2; progress: () => number };
  const handle = await open(tempFile, 'wx', 0o600);
  const progressEvery = options.progressIntervalMs ?? 10_000;
  let progress: NodeJS.Timeout | undefined;
  try {
    logger?.info(
      { key: store.url(options.key), schemaVersion: metadata?.schemaVersion ?? 0, storedBytes: storedSize },
      'restore: downloading and verifying',
    );
    let transform: (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer>;
    let fast: (() => Promise<void>) | undefined;
    if (!metadata) {
      let n = 0;
      decrypted = { plaintextSize: 0, schemaVersion: 0, progress: () => n };
      transform = async function* (source) {
        for await (const chunk of source) {
          n += chunk.length;
          yield chunk;
        }
        decrypted.plaintextSize = n;
      };
    } else if (metadata.schemaVersion === 2) {
      const m = metadata;
      const decryptorOptions = {
        expect: {
          bound: boundOf(m),
          salt: Buffer.from(m.kdf.salt, 'hex'),
          sha256: Buffer.from(m.etcdSnapshotSha256, 'hex'),
          plaintextSize: m.plaintextSize,
          ciphertextSize: m.ciphertextSize,
        },
        unwrap: () => unwrap(m),
        ...(storedSize !== undefined ? { storedSize } : {}),
      };
      const decryptor = new StreamDecryptor(decryptorOptions);
      decrypted = { plaintextSize: 0, schemaVersion: 2, progress: () => decryptor.plaintextSize };
      transform = async function* (source) {
        yield* decryptor.decrypt(source);
        decrypted.plaintextSize = decryptor.plaintextSize;
        decrypted.sha256 = decryptor.sha256;
      };
      if (ranged) {
        fast = async () => {
          const result = await restoreRanged({
            store,
            key: snapshotKey,
            metadata: m,
            decryptor,
            handle,
            ...(options.signal ? { signal: options.signal } : {}),
          });
          if (!result) {
            // Name the problem exactly as the streaming reader does: read it again, writing nothing.
            const again = await store.getStream(snapshotKey);
            if (!again) throw missing();
            try {
              for await (const piece of new StreamDecryptor(decryptorOptions).decrypt(again.body)) piece.fill(0);
            } finally {
              again.body.destroy();
            }
            throw new BackupError(
              'SEGMENT_TAMPERED',
              'a segment of snapshot.db.enc failed authentication on a ranged read but not on a full read: the object changed during the restore',
            );
          }
          decrypted.plaintextSize = result.plaintextSize;
          decrypted.sha256 = result.sha256;
        };
      }
    } else {
      const m = metadata;
      const decryptor = new V1Decryptor({
        dek: await unwrap(m),
        ...(m.etcdSnapshotSha256 ? { sha256: Buffer.from(m.etcdSnapshotSha256, 'hex') } : {}),
      });
      decrypted = { plaintextSize: 0, schemaVersion: 1, progress: () => decryptor.plaintextSize };
      transform = async function* (source) {
        yield* decryptor.decrypt(source);
        decrypted.plaintextSize = decryptor.plaintextSize;
        decrypted.sha256 = decryptor.sha256;
      };
    }
    progress = setInterval(
      () => logger?.info({ plaintextBytes: decrypted.progress() }, 'restore progress'),
      progressEvery,
    );
    progress.unref();
    // The stream owns the handle: fsync (flush) and close happen before the pipeline resolves.
    if (fast) {
      await fast();
      await handle.sync();
      await handle.close();
    } else {
      await pipeline(
        object!.body,
        transform,
        createWriteStream('', { fd: handle, flush: true, highWaterMark: 1 << 20 }),
        options.signal ? { signal: options.signal } : {},
      );
    }
    logger?.info(
      { plaintextBytes: decrypted.plaintextSize, sha256: decrypted.sha256?.toString('hex') },
      'restore: snapshot verified',
    );

    if (destination.kind === 'file') {
      // link() refuses an existing name: never clobber something that appeared meanwhile.
      await link(tempFile, target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST')
          throw new BackupError(
            'DESTINATION_NOT_EMPTY',
            `${target} appeared during the restore; the verified snapshot was not written`,
          );
        throw error;
      });
      await unlink(tempFile);
      cleanFile = false;
    } else {
      const args = ['snapshot', 'restore', tempFile, '--data-dir', tempDataDir];
      if (destination.name) args.push('--name', destination.name);
      if (destination.initialCluster) args.push('--initial-cluster', destination.initialCluster);
      if (destination.initialAdvertisePeerUrls)
        args.push('--initial-advertise-peer-urls', destination.initialAdvertisePeerUrls);
      if (destination.bumpRevision) args.push('--bump-revision', String(destination.bumpRevision), '--mark-compacted');
      // A plaintext .db copied out of a data dir has no hash trailer; etcdutl checks it otherwise.
      await runEtcdutl(destination.etcdutl ?? 'etcdutl', args, options.signal);
      await chmod(tempDataDir, 0o700);
      if (!(await isEmptyOrAbsent(target)))
        throw new BackupError(
          'DESTINATION_NOT_EMPTY',
          `${target} was filled during the restore; the restored data dir was discarded`,
        );
      await rename(tempDataDir, target);
    }
    const durationMs = Math.round(performance.now() - started);
    logger?.info(
      { key: store.url(options.key), destination: target, plaintextBytes: decrypted.plaintextSize, durationMs },
      'restore complete',
    );
    return {
      key: options.key,
      schemaVersion: decrypted.schemaVersion,
      plaintextSize: decrypted.plaintextSize,
      ...(decrypted.sha256 ? { sha256: decrypted.sha256.toString('hex') } : {}),
      destination: target,
      durationMs,
    };
  } catch (error) {
    object?.body.destroy();
    await handle.close().catch(() => undefined);
    await rm(tempDataDir, { recursive: true, force: true }).catch(() => undefined);
    logger?.error(
      { key: store.url(options.key), err: describeError(error) },
      'restore refused; nothing was written to the destination',
    );
    if (error instanceof BackupError) throw error;
    throw new BackupError(
      'IO_FAILED',
      `restore of ${store.url(options.key)} failed: ${describeError(error)}`,
      {},
      { cause: error },
    );
  } finally {
    if (progress) clearInterval(progress);
    if (cleanFile) await rm(tempFile, { force: true }).catch(() => undefined);
  }
}
