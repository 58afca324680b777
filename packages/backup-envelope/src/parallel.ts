// Encryption and decryption with the crypto on a worker thread (crypto-worker.ts): the bytes
// are exactly StreamEncryptor's (parallel.test.ts checks it), produced into reused buffers so
// memory stays fixed whatever the snapshot size.
import { randomBytes, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './crypto-worker.ts';
import type { EncryptResult, EncryptorOptions } from './format/encrypt.ts';
import { checkTrailer, type TrailerListener } from './format/hasher.ts';
import { encodeHeader } from './format/header.ts';
import { deriveKeys, kdfInfo } from './format/kdf.ts';
import { NONCE_PREFIX_LENGTH } from './format/segment.ts';
import { HEADER_LENGTH, MAX_SEGMENTS, SALT_LENGTH, TAG_LENGTH, checkSegmentSize } from './format/spec.ts';

// Sources run with type stripping (`--conditions=source`), builds from dist: the worker file
// sits beside this one either way.
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './crypto-worker.ts' : './crypto-worker.js',
  import.meta.url,
);

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

  constructor(key: KeyObject, noncePrefix: Buffer, header: Buffer) {
    this.worker = new Worker(WORKER_URL);
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(`crypto worker: ${reply.error}`));
      else waiter?.resolve(reply);
    });
    this.worker.on('error', (error: Error) => this.fail(error));
    this.worker.on('exit', () => this.fail(new Error('the crypto worker exited')));
    this.request('init', { key, noncePrefix, header }).catch(() => undefined);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }

  request<Op extends WorkerRequest['op']>(
    op: Op,
    message: Omit<Extract<WorkerRequest, { op: Op }>, 'id' | 'op'>,
    transfer: ArrayBuffer[] = [],
  ): Promise<WorkerReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, op, id }, transfer);
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
 * worker thread straight into reused part buffers (`parts` buffers of `partSize`), which are
 * handed out in order as they fill. The plaintext passes through `STAGING_SEGMENTS` reused
 * segment buffers. Memory: (parts + staging) buffers, whatever the snapshot size.
 */
export class ParallelEncryptor implements TrailerListener {
  readonly header: Buffer;
  readonly salt: Buffer;
  readonly info: string;
  readonly segmentSize: number;
  private readonly worker: CryptoWorker;
  private done: EncryptResult | undefined;
  private trailerAt: number | undefined;
  private trailer: Buffer[] = [];
  private trailerLength = 0;
  private seenTrailerStart = false;
  bytesIn = 0;
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

  get result(): EncryptResult {
    if (!this.done) throw new Error('the encryption has not finished');
    return this.done;
  }

  expectTrailerAt(databaseSize: number): void {
    if (this.bytesIn > databaseSize) throw new Error('expectTrailerAt after the database end went by');
    this.trailerAt = databaseSize;
    void this.worker.request('mark', { at: databaseSize }).catch(() => undefined);
  }

  private track(chunk: Buffer): void {
    if (this.trailerAt !== undefined) {
      const start = this.seenTrailerStart
        ? 0
        : this.bytesIn + chunk.length >= this.trailerAt
          ? this.trailerAt - this.bytesIn
          : -1;
      if (start >= 0) {
        this.seenTrailerStart = true;
        if (this.trailerLength < 64) this.trailer.push(Buffer.from(chunk.subarray(start, start + 64)));
        this.trailerLength += chunk.length - start;
      }
    }
    this.bytesIn += chunk.length;
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
    const pool = new BufferPool(partSize, Math.max(2, options.parts), true);
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
      const seal = async (plain: Buffer, last: boolean) => {
        if (index >= MAX_SEGMENTS) throw new RangeError('more than 2^32 segments: use a larger segment size');
        const pieces = await reserve(plain.length + TAG_LENGTH);
        const i = index++;
        const reply = this.worker.request('seal', { plain, index: i, last, out: pieces.map((p) => p.view) });
        const buffer = slot;
        inflight = reply.then((r) => {
          staging.give(buffer);
          this.segments = i + 1;
          if (last) {
            checkTrailer(
              this.trailerAt,
              r.size!,
              r.databaseDigest ? Buffer.from(r.databaseDigest) : undefined,
              this.trailer,
              this.trailerLength,
            );
            this.done = {
              sha256: Buffer.from(r.sha256!),
              plaintextSize: r.size!,
              ciphertextSize: position,
              segments: i + 1,
            };
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
        this.track(chunk);
        let at = 0;
        while (at < chunk.length) {
          // A full segment is sealed as non-final only once we know more bytes follow it.
          if (filled === segmentSize) {
            await seal(slot, false);
            slot = await staging.take();
            filled = 0;
          }
          const n = chunk.copy(slot, filled, at);
          filled += n;
          at += n;
        }
      }
      await seal(slot.subarray(0, filled), true);
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
