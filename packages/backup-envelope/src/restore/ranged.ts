// The schemaVersion 2 fast path: ranged GETs in parallel, a worker thread that verifies and
// decrypts, positional writes, so download, crypto and disk overlap. It only says *that* a segment
// failed; the streaming reader (format/decrypt.ts) stays the one that names what happened.
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { BackupError } from '../errors.ts';
import type { StreamDecryptor } from '../format/decrypt.ts';
import { finalAad, segmentNonce } from '../format/segment.ts';
import { garbageCollector, shrinkHeap } from '../gc.ts';
import { HEADER_LENGTH, TAG_LENGTH, segmentCount } from '../format/spec.ts';
import type { MetadataV2 } from '../metadata.ts';
import { BufferPool, CryptoWorker } from '../parallel.ts';
import type { BackupStore } from '../store/store.ts';

/** Ciphertext per ranged GET (whole segments), how many GETs run at once, and the memory they may hold. */
const RANGE_BYTES = 4 * 1024 * 1024;
const DOWNLOAD_CONCURRENCY = 2;
const RANGE_MEMORY = 20 * 1024 * 1024;

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
  // Downloads in flight, one in the worker, one being hashed and written: DOWNLOAD_CONCURRENCY + 3.
  const buffers = Math.max(2, Math.min(DOWNLOAD_CONCURRENCY + 3, Math.floor(RANGE_MEMORY / bufferBytes)));
  return { segmentBytes, count, perRange, ranges: Math.ceil(count / perRange), buffers, bufferBytes };
}

/**
 * The schemaVersion 2 fast path, for a stored object of exactly the size metadata.json names.
 * First the 85-byte header alone: it is checked against metadata.json and the data key is
 * unwrapped and checked, so nothing is sized from metadata.json before the key authenticated it.
 * Then ranged GETs of whole segments run in parallel into a few reused buffers; a worker thread
 * verifies and decrypts them in order (one range ahead) while this thread hashes the plaintext; each range's verified plaintext is written with one
 * positional write. The last range is written only after the final segment's tag (which covers
 * the whole-plaintext hash) and the hash itself verified. Returns false at the first segment
 * that fails, with nothing of it written: the caller then names the problem.
 */
export async function restoreRanged(args: {
  store: Pick<BackupStore, 'getRange'>;
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
  shrinkHeap();
  // The socket reads each download copies from are garbage right after (outside the heap).
  // A minor GC per 2 MiB downloaded (see gc.ts).
  const collect = garbageCollector();
  // Shared buffers, as the backup's part buffers: the worker decrypts in place, nothing is copied
  // or transferred.
  const pool = new BufferPool(plan.bufferBytes, plan.buffers, true);
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
      store
        .getRange(key, r.start, r.end, view, controller.signal, collect)
        .then(() => d.resolve({ buffer, view }), d.reject);
    }
  })();
  const worker = new CryptoWorker(opened.key, opened.header.noncePrefix, header);
  const hash = createHash('sha256');
  let writing: Promise<unknown> = Promise.resolve();
  /** Range j downloaded, then sent to the worker to verify and decrypt in place. */
  const openRange = async (j: number) => {
    const { buffer, view } = await slot(j).promise;
    ready.delete(j);
    const r = rangeOf(j);
    const request = {
      data: view,
      count: r.n,
      index: r.first,
      nonces: Buffer.concat(
        Array.from({ length: r.n }, (_, k) =>
          segmentNonce(opened.header.noncePrefix, r.first + k, j === ranges - 1 && k === r.n - 1),
        ),
      ),
      segmentBytes,
      ...(j === ranges - 1
        ? { finalAad: finalAad(header, Buffer.from(m.etcdSnapshotSha256, 'hex'), m.plaintextSize) }
        : {}),
    };
    const reply = await worker.request('open', request);
    return { reply, buffer, r };
  };
  // One range ahead: the worker decrypts range j+1 while this thread hashes and writes range j.
  let next: Promise<Awaited<ReturnType<typeof openRange>>> | undefined;
  try {
    let position = 0;
    next = openRange(0);
    for (let j = 0; j < ranges; j++) {
      if (args.signal?.aborted) throw new BackupError('IO_FAILED', 'restore cancelled (signal)');
      const { reply, buffer, r } = await next!;
      next = j + 1 < ranges ? openRange(j + 1) : undefined;
      next?.catch(() => undefined);
      if (reply.failed !== undefined) {
        pool.give(buffer);
        return false;
      }
      const length = reply.plainLength!;
      const plain = buffer.subarray(0, length);
      hash.update(plain);
      decryptor.plaintextSize += length;
      decryptor.segments = r.first + r.n;
      const at = position;
      position += length;
      if (j === ranges - 1) {
        const sha256 = hash.digest();
        if (!sha256.equals(Buffer.from(m.etcdSnapshotSha256, 'hex')) || position !== m.plaintextSize) {
          buffer.fill(0);
          throw new BackupError(
            'SNAPSHOT_CORRUPT',
            'snapshot.db.enc decrypted and authenticated, but its plaintext hash or size differs from the authenticated values: the writer was faulty',
          );
        }
      }
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
    // A range still in the worker comes back (its plaintext is wiped below) before it stops.
    await next?.then(({ buffer }) => buffer.fill(0)).catch(() => undefined);
    await worker.close();
    pool.give(Buffer.alloc(0));
    await launcher.catch(() => undefined);
    pool.wipe();
  }
}
