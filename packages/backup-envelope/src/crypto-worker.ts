// The crypto worker thread: AES-256-GCM per segment, off the main thread, so the main thread keeps
// doing the I/O (source, S3, file) and the plaintext SHA-256 meanwhile: the two passes of the
// format run on two cores at once. `seal` writes sealed segments straight into the caller's
// (shared) part buffers; `open` verifies and decrypts a run of segments in place in a shared
// range buffer. Segment nonces and the final AAD come with each request, made by format/segment.ts on
// the main thread, the same code the stream encryptor and decryptor use.
//
// This module imports only node: builtins, so that from sources (type stripping) the main thread
// can hand it over already stripped (parallel.ts): a worker that loads a .ts file loads its own
// type stripper too (about 9 MB of RSS, measured).
import { createCipheriv, createDecipheriv, type Cipheriv, type Decipheriv, type KeyObject } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';

export type WorkerRequest =
  | { id: number; op: 'init'; key: KeyObject; header: Uint8Array }
  | {
      id: number;
      op: 'seal';
      plain: Uint8Array;
      nonce: Uint8Array;
      /** The final segment's AAD (header || SHA-256 || size); every other segment's is the header. */
      finalAad?: Uint8Array;
      out: Uint8Array[];
    }
  | {
      id: number;
      op: 'open';
      /** A view of a shared range buffer: verified plaintext replaces the ciphertext in place. */
      data: Uint8Array;
      count: number;
      /** First segment's index, for the reply's `failed`. */
      index: number;
      /** `count` nonces of 12 bytes, one per segment; the last one's AAD is `finalAad` when given. */
      nonces: Uint8Array;
      segmentBytes: number;
      finalAad?: Uint8Array;
    };

export interface WorkerReply {
  id: number;
  error?: string;
  failed?: number;
  plainLength?: number;
}

/**
 * Bytes per cipher call. Node's cipher API allocates a fresh output buffer per call; below
 * glibc's mmap threshold (128 KiB) it comes from the thread's malloc arena, and `release` hands it
 * back at once, so the next call gets the same, still cached, memory: no page faults, no garbage
 * for minor GCs to sweep. Measured over 2 GiB through the encryptor, alternating with the former
 * 1 MiB pieces left to a minor GC every 2 MiB: the same CPU on a quiet machine (1.87-1.89 CPU-s per
 * GiB, both threads), 0.1-0.3 CPU-s per GiB less when the machine is busy.
 */
const PIECE = 64 * 1024;

// A full GC every 64 MiB: each request's views of the shared buffers leave a small wrapper behind
// that outlives minor GCs, and without it the worker's memory grew with the snapshot size (+7 MB
// per 600 MiB decrypted, measured; flat with it). Cipher output that could not be released (see
// `release`) is collected by a minor GC every 2 MiB instead (see gc.ts, which this module cannot
// import).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;
let garbage = 0;
let sinceFull = 0;
function collect(bytes: number, garbageBytes: number): void {
  garbage += garbageBytes;
  sinceFull += bytes;
  if (sinceFull >= 64 * 1024 * 1024) {
    sinceFull = 0;
    garbage = 0;
    gc({ type: 'major' });
  } else if (garbage >= 2 * 1024 * 1024) {
    garbage = 0;
    gc({ type: 'minor' });
  }
}

/**
 * Frees a cipher output now (detaching its ArrayBuffer releases the memory) and says so; only a
 * buffer that owns its whole ArrayBuffer qualifies, so that were Node to hand out views of a shared
 * pool one day, nothing else would be detached: such output is left to the GC.
 */
function release(out: Buffer): boolean {
  if (out.byteOffset !== 0 || out.buffer.byteLength > out.length + 64 || out.buffer instanceof SharedArrayBuffer)
    return false;
  out.buffer.transfer(0);
  return true;
}

let key: KeyObject;
let header: Buffer;

const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** Writes consecutive bytes over a list of views (a segment may straddle two parts). */
function scatter(targets: Buffer[]): (bytes: Buffer) => void {
  let t = 0;
  let at = 0;
  return (bytes) => {
    for (let from = 0; from < bytes.length;) {
      const target = targets[t]!;
      const n = bytes.copy(target, at, from);
      from += n;
      at += n;
      if (at === target.length) {
        t++;
        at = 0;
      }
    }
  };
}

/** update() in PIECE-sized calls, each output handed to `sink`. */
function run(cipher: Cipheriv | Decipheriv, input: Buffer, sink: (bytes: Buffer) => void): void {
  for (let at = 0; at < input.length; at += PIECE) {
    const out = cipher.update(input.subarray(at, Math.min(input.length, at + PIECE)));
    sink(out);
    const length = out.length;
    collect(length, release(out) ? 0 : length);
  }
}

function seal(m: Extract<WorkerRequest, { op: 'seal' }>): Omit<WorkerReply, 'id'> {
  const cipher = createCipheriv('aes-256-gcm', key, view(m.nonce), { authTagLength: 16 });
  cipher.setAAD(m.finalAad ? view(m.finalAad) : header);
  const write = scatter(m.out.map(view));
  run(cipher, view(m.plain), write);
  const rest = cipher.final();
  if (rest.length) write(rest);
  write(cipher.getAuthTag());
  return {};
}

function open(m: Extract<WorkerRequest, { op: 'open' }>): Omit<WorkerReply, 'id'> {
  const buf = view(m.data);
  const lastAad = m.finalAad ? Buffer.from(m.finalAad) : undefined;
  let read = 0;
  let written = 0;
  for (let k = 0; k < m.count; k++) {
    const length = Math.min(m.segmentBytes, buf.length - read);
    const last = lastAad !== undefined && k === m.count - 1;
    const nonce = Buffer.from(m.nonces.buffer, m.nonces.byteOffset + 12 * k, 12);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAAD(last ? lastAad : header);
    decipher.setAuthTag(buf.subarray(read + length - 16, read + length));
    // In place: each piece's plaintext lands at or before bytes already fed to the decipher.
    let to = written;
    run(decipher, buf.subarray(read, read + length - 16), (plain) => (to += plain.copy(buf, to)));
    try {
      decipher.final();
    } catch {
      // Nothing unverified leaves the worker: the segment's candidate plaintext is zeroed.
      buf.fill(0, written, read + length);
      return { failed: m.index + k };
    }
    written = to;
    read += length;
  }
  return { plainLength: written };
}

function handle(m: WorkerRequest): Omit<WorkerReply, 'id'> {
  switch (m.op) {
    case 'init':
      key = m.key;
      header = Buffer.from(m.header);
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
    parentPort!.postMessage({ id: m.id, ...reply });
  } catch (error) {
    parentPort!.postMessage({ id: m.id, error: String((error as Error)?.message ?? error) });
  }
});
