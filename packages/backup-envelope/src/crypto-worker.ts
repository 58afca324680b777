// The crypto worker thread: AES-256-GCM per segment and the plaintext SHA-256, off the main
// thread, so the main thread keeps doing the I/O (source, S3, file) meanwhile. `seal` writes
// sealed segments straight into the caller's (shared) part buffers; `open` verifies and decrypts
// a run of segments in place in a transferred buffer. Segment nonces and the final AAD come from
// format/segment.ts, the same code the stream encryptor and decryptor use.
import { createCipheriv, createDecipheriv, createHash, type KeyObject } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { finalAad, segmentNonce } from './format/segment.ts';

export type WorkerRequest =
  | { id: number; op: 'init'; key: KeyObject; noncePrefix: Uint8Array; header: Uint8Array }
  | { id: number; op: 'mark'; at: number }
  | { id: number; op: 'seal'; plain: Uint8Array; index: number; last: boolean; out: Uint8Array[] }
  | {
      id: number;
      op: 'open';
      buf: ArrayBuffer;
      offset: number;
      length: number;
      count: number;
      index: number;
      segmentBytes: number;
      finalAad?: Uint8Array;
    };

export interface WorkerReply {
  id: number;
  error?: string;
  sha256?: Uint8Array;
  databaseDigest?: Uint8Array;
  size?: number;
  failed?: number;
  plainLength?: number;
  /** The ArrayBuffer an `open` request transferred, handed back. */
  buf?: ArrayBuffer;
}

// Every segment leaves one output buffer behind (Node's cipher API allocates it). Collecting this
// small heap every few MiB keeps that garbage (otherwise up to V8's external-memory slack, about
// 64 MiB) out of the job's RSS. Worker execArgv cannot carry V8 flags, hence the runtime flag.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
const GC_EVERY_BYTES = 8 * 1024 * 1024;

let key: KeyObject;
let noncePrefix: Buffer;
let header: Buffer;
const hash = createHash('sha256');
let hashed = 0;
let garbage = 0;
/** The etcd database size: the hash state is copied there (the snapshot's own trailer check). */
let mark = -1;
let markDigest: Buffer | undefined;

const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function collect(bytes: number): void {
  garbage += bytes;
  if (garbage < GC_EVERY_BYTES) return;
  garbage = 0;
  collectGarbage({ type: 'minor' });
}

function hashUpdate(bytes: Buffer): void {
  if (mark >= 0 && markDigest === undefined && hashed + bytes.length >= mark) {
    const cut = mark - hashed;
    hash.update(bytes.subarray(0, cut));
    markDigest = hash.copy().digest();
    hash.update(bytes.subarray(cut));
  } else {
    hash.update(bytes);
  }
  hashed += bytes.length;
}

function seal(m: Extract<WorkerRequest, { op: 'seal' }>): Omit<WorkerReply, 'id'> {
  const plain = view(m.plain);
  hashUpdate(plain);
  const sha = m.last ? hash.digest() : undefined;
  const cipher = createCipheriv('aes-256-gcm', key, segmentNonce(noncePrefix, m.index, m.last), { authTagLength: 16 });
  cipher.setAAD(sha ? finalAad(header, sha, hashed) : header);
  const sealed = [cipher.update(plain), cipher.final(), cipher.getAuthTag()].filter((b) => b.length);
  collect(sealed[0]?.length ?? 0);
  // Scatter the sealed bytes over the output views (a segment may straddle two parts).
  let piece = 0;
  let at = 0;
  for (const target of m.out.map(view)) {
    for (let filled = 0; filled < target.length;) {
      const source = sealed[piece]!;
      const n = source.copy(target, filled, at);
      filled += n;
      at += n;
      if (at === source.length) {
        piece++;
        at = 0;
      }
    }
  }
  return sha ? { sha256: sha, size: hashed, ...(markDigest ? { databaseDigest: markDigest } : {}) } : {};
}

function open(m: Extract<WorkerRequest, { op: 'open' }>): Omit<WorkerReply, 'id'> {
  const buf = Buffer.from(m.buf, m.offset, m.length);
  const lastAad = m.finalAad ? Buffer.from(m.finalAad) : undefined;
  let read = 0;
  let written = 0;
  for (let k = 0; k < m.count; k++) {
    const length = Math.min(m.segmentBytes, buf.length - read);
    const last = lastAad !== undefined && k === m.count - 1;
    const decipher = createDecipheriv('aes-256-gcm', key, segmentNonce(noncePrefix, m.index + k, last), {
      authTagLength: 16,
    });
    decipher.setAAD(last ? lastAad : header);
    const plain = decipher.update(buf.subarray(read, read + length - 16));
    decipher.setAuthTag(buf.subarray(read + length - 16, read + length));
    try {
      decipher.final();
    } catch {
      plain.fill(0);
      return { failed: m.index + k, buf: m.buf };
    }
    hash.update(plain);
    hashed += plain.length;
    plain.copy(buf, written);
    collect(plain.length);
    written += plain.length;
    read += length;
  }
  return lastAad
    ? { plainLength: written, sha256: hash.digest(), size: hashed, buf: m.buf }
    : { plainLength: written, buf: m.buf };
}

function handle(m: WorkerRequest): Omit<WorkerReply, 'id'> {
  switch (m.op) {
    case 'init':
      key = m.key;
      noncePrefix = Buffer.from(m.noncePrefix);
      header = Buffer.from(m.header);
      return {};
    case 'mark':
      mark = m.at;
      return {};
    case 'seal':
      return seal(m);
    case 'open':
      return open(m);
  }
}

parentPort!.on('message', (m: WorkerRequest) => {
  try {
    const reply = handle(m);
    parentPort!.postMessage({ id: m.id, ...reply }, reply.buf ? [reply.buf] : []);
  } catch (error) {
    parentPort!.postMessage({ id: m.id, error: String((error as Error)?.message ?? error) });
  }
});
