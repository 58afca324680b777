// Encryption and decryption with the crypto on a worker thread (crypto-worker.ts): the bytes
// are exactly StreamEncryptor's (parallel.test.ts checks it), produced into reused buffers so
// memory stays fixed whatever the snapshot size.
import { randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './crypto-worker.ts';
import type { EncryptResult, EncryptorOptions } from './format/encrypt.ts';
import { PlaintextHasher, type TrailerListener } from './format/hasher.ts';
import { encodeHeader } from './format/header.ts';
import { deriveKeys, kdfInfo } from './format/kdf.ts';
import { NONCE_PREFIX_LENGTH, finalAad, segmentNonce } from './format/segment.ts';
import { HEADER_LENGTH, MAX_SEGMENTS, SALT_LENGTH, TAG_LENGTH, checkSegmentSize } from './format/spec.ts';

// Builds run from dist, where the worker file sits beside this one. Sources run with type
// stripping (`--conditions=source`): there this thread strips crypto-worker.ts (it imports only
// node: builtins) and starts the worker from that JavaScript, so the worker does not load a type
// stripper of its own (about 9 MB of RSS).
let workerUrl: URL | undefined;
function cryptoWorkerUrl(): URL {
  if (workerUrl) return workerUrl;
  if (!import.meta.url.endsWith('.ts')) return (workerUrl = new URL('./crypto-worker.js', import.meta.url));
  const source = readFileSync(new URL('./crypto-worker.ts', import.meta.url), 'utf8');
  // stripTypeScriptTypes warns that it is experimental: not a line for the job's JSON log.
  const emitWarning = Object.getOwnPropertyDescriptor(process, 'emitWarning')!;
  process.emitWarning = () => undefined;
  try {
    return (workerUrl = new URL(`data:text/javascript,${encodeURIComponent(stripTypeScriptTypes(source))}`));
  } finally {
    Object.defineProperty(process, 'emitWarning', emitWarning);
  }
}

/** A fixed set of equal buffers handed out and back: memory stays at `count x size`. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buffer: Buffer) => void)[] = [];

  /** `shared`: backed by SharedArrayBuffers, so the crypto worker reads and writes them in place. */
  constructor(size: number, count: number, shared = false) {
    for (let i = 0; i < count; i++)
      this.free.push(shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size));
  }

  take(): Promise<Buffer> {
    const buffer = this.free.pop();
    return buffer ? Promise.resolve(buffer) : new Promise((resolve) => this.waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(buffer);
    else this.free.push(buffer);
  }

  /** Zeroes the buffers that are back (after they held plaintext). */
  wipe(): void {
    for (const buffer of this.free) if (buffer.buffer.byteLength) buffer.fill(0);
  }
}

/** One crypto worker: requests are answered in order. */
export class CryptoWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void }
  >();
  private nextId = 0;
  private failure: Error | undefined;

  readonly noncePrefix: Buffer;
  readonly header: Buffer;

  constructor(key: KeyObject, noncePrefix: Buffer, header: Buffer) {
    this.noncePrefix = noncePrefix;
    this.header = header;
    // The worker allocates few JS objects (its garbage is cipher output, outside the heap): a small
    // young generation keeps its heap from growing to the default's tens of MiB.
    this.worker = new Worker(cryptoWorkerUrl(), { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(`crypto worker: ${reply.error}`));
      else waiter?.resolve(reply);
    });
    this.worker.on('error', (error: Error) => this.fail(error));
    this.worker.on('exit', () => this.fail(new Error('the crypto worker exited')));
    this.request('init', { key, header }).catch(() => undefined);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }

  request<Op extends WorkerRequest['op']>(
    op: Op,
    message: Omit<Extract<WorkerRequest, { op: Op }>, 'id' | 'op'>,
  ): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, op, id });
    });
  }

  close(): Promise<number> {
    this.failure ??= new Error('the crypto worker was closed');
    return this.worker.terminate();
  }
}

/** A queue of items produced ahead of a consumer; `fail` makes the consumer throw. */
class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }[] = [];
  private ended = false;
  private error: unknown;

  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve({ value: item, done: false });
    else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  fail(error: unknown): void {
    if (this.ended || this.error !== undefined) return;
    this.error = error;
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the failure as it came, whatever it is
    if (this.error !== undefined) return Promise.reject(this.error);
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

export interface SealedPart {
  data: Buffer;
  release: () => void;
}

/**
 * The same bytes as StreamEncryptor, produced for a multipart upload: segments are sealed by a
 * worker thread straight into reused part buffers (`parts` buffers of `partSize`, at least 3),
 * which are handed out in order as they fill. The plaintext passes through `STAGING_SEGMENTS`
 * reused segment buffers; the main thread hashes it (SHA-256, and etcd's trailer check) while it
 * copies it there, and the worker encrypts: the two passes of the format run on two cores.
 * Memory: (parts + staging) buffers, whatever the snapshot size.
 */
export class ParallelEncryptor implements TrailerListener {
  readonly header: Buffer;
  readonly salt: Buffer;
  readonly info: string;
  readonly segmentSize: number;
  private readonly worker: CryptoWorker;
  private readonly hasher = new PlaintextHasher();
  private done: EncryptResult | undefined;
  segments = 0;

  constructor(options: Omit<EncryptorOptions, 'hasher'>) {
    checkSegmentSize(options.bound.segmentSize);
    this.segmentSize = options.bound.segmentSize;
    this.salt = options.salt ?? randomBytes(SALT_LENGTH);
    const noncePrefix = options.noncePrefix ?? randomBytes(NONCE_PREFIX_LENGTH);
    if (this.salt.length !== SALT_LENGTH || noncePrefix.length !== NONCE_PREFIX_LENGTH)
      throw new RangeError('salt must be 32 bytes and the nonce prefix 7');
    this.info = kdfInfo(options.bound);
    const { key, keyCheck } = deriveKeys(options.dek, this.salt, this.info);
    this.header = encodeHeader({ segmentSize: this.segmentSize, salt: this.salt, noncePrefix, keyCheck });
    this.worker = new CryptoWorker(key, noncePrefix, this.header);
  }

  /** Plaintext bytes consumed so far (progress reporting). */
  get bytesIn(): number {
    return this.hasher.size;
  }

  get result(): EncryptResult {
    if (!this.done) throw new Error('the encryption has not finished');
    return this.done;
  }

  expectTrailerAt(databaseSize: number): void {
    this.hasher.expectTrailerAt(databaseSize);
  }

  close(): Promise<number> {
    return this.worker.close();
  }

  /** Encrypts `source` into parts; every input chunk is copied before the next is requested. */
  parts(
    source: AsyncIterable<Uint8Array>,
    options: { partSize: number; parts: number },
  ): AsyncIterable<SealedPart> & { stop(error: unknown): void } {
    const { partSize } = options;
    if (partSize < HEADER_LENGTH) throw new RangeError('part size below the header size');
    const segmentSize = this.segmentSize;
    // The uploader holds two filled parts before it sends the first, and a segment can straddle
    // two more: fewer than 3 buffers could wait on each other forever.
    const pool = new BufferPool(partSize, Math.max(3, options.parts), true);
    const staging = new BufferPool(segmentSize, STAGING_SEGMENTS, true);
    const queue = new AsyncQueue<SealedPart>();
    const open = new Map<number, { buffer: Buffer; written: number; length: number }>();
    let nextOut = 0;
    let position = 0;
    let stopped: unknown;
    const flush = () => {
      for (let part = open.get(nextOut); part && part.written === part.length; part = open.get(nextOut)) {
        open.delete(nextOut++);
        const buffer = part.buffer;
        queue.push({
          data: part.length === partSize ? buffer : buffer.subarray(0, part.length),
          release: () => pool.give(buffer),
        });
      }
    };
    const reserve = async (length: number) => {
      const pieces: { part: number; view: Buffer }[] = [];
      while (length > 0) {
        const index = Math.floor(position / partSize);
        const offset = position % partSize;
        let part = open.get(index);
        if (!part) {
          part = { buffer: await pool.take(), written: 0, length: partSize };
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- the first failure, rethrown as it came
          if (stopped !== undefined) throw stopped;
          open.set(index, part);
        }
        const n = Math.min(length, partSize - offset);
        pieces.push({ part: index, view: part.buffer.subarray(offset, offset + n) });
        position += n;
        length -= n;
      }
      return pieces;
    };
    const written = (pieces: { part: number; view: Buffer }[]) => {
      for (const piece of pieces) open.get(piece.part)!.written += piece.view.length;
      flush();
    };
    const produce = async () => {
      written(
        await reserve(HEADER_LENGTH).then((pieces) => {
          let at = 0;
          for (const piece of pieces) at += this.header.copy(piece.view, 0, at);
          return pieces;
        }),
      );
      let slot = await staging.take();
      let filled = 0;
      let index = 0;
      let inflight: Promise<void> = Promise.resolve();
      const seal = async (plain: Buffer, final?: { sha256: Buffer; size: number }) => {
        if (index >= MAX_SEGMENTS) throw new RangeError('more than 2^32 segments: use a larger segment size');
        const pieces = await reserve(plain.length + TAG_LENGTH);
        const i = index++;
        const reply = this.worker.request('seal', {
          plain,
          nonce: segmentNonce(this.worker.noncePrefix, i, final !== undefined),
          ...(final ? { finalAad: finalAad(this.header, final.sha256, final.size) } : {}),
          out: pieces.map((p) => p.view),
        });
        const buffer = slot;
        inflight = reply.then(() => {
          staging.give(buffer);
          this.segments = i + 1;
          if (final) {
            this.done = { sha256: final.sha256, plaintextSize: final.size, ciphertextSize: position, segments: i + 1 };
            open.get(Math.floor((position - 1) / partSize))!.length = ((position - 1) % partSize) + 1;
          }
          written(pieces);
        });
        inflight.catch((error: unknown) => queue.fail(error));
      };
      for await (const input of source) {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the first failure, rethrown as it came
        if (stopped !== undefined) throw stopped;
        const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
        if (chunk.length === 0) continue;
        let at = 0;
        while (at < chunk.length) {
          // A full segment is sealed as non-final only once we know more bytes follow it.
          if (filled === segmentSize) {
            await seal(slot);
            slot = await staging.take();
            filled = 0;
          }
          const n = chunk.copy(slot, filled, at);
          // Hashed from the staging copy, while it is still in the CPU cache.
          this.hasher.update(slot.subarray(filled, filled + n));
          filled += n;
          at += n;
        }
      }
      // Throws SNAPSHOT_CORRUPT (before the final segment is sealed) when etcd's trailer is wrong.
      await seal(slot.subarray(0, filled), this.hasher.finish());
      await inflight;
      if (!this.done) throw new Error('the final segment was not sealed');
      staging.wipe();
      queue.end();
    };
    let started = false;
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          if (!started) {
            started = true;
            produce().catch((error: unknown) => {
              staging.wipe();
              queue.fail(error);
            });
          }
          return queue.next();
        },
        return: () => {
          stopped ??= new Error('the upload stopped');
          queue.fail(stopped);
          return Promise.resolve({ value: undefined, done: true as const });
        },
      }),
      stop: (error: unknown) => {
        stopped ??= error;
        queue.fail(error);
        // Unblock a producer waiting for a buffer.
        pool.give(Buffer.alloc(partSize));
        staging.give(Buffer.alloc(segmentSize));
      },
    };
  }
}

const STAGING_SEGMENTS = 3;
