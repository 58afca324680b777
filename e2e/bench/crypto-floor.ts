// The floor of the backup format's crypto in Node, for bench:backup: the format's two passes over
// every byte (SHA-256 of the plaintext, AES-256-GCM per segment) made with Node's own crypto calls
// on two threads at once (SHA-256 here, AES-256-GCM on a worker), with nothing else: no copies, no
// handoff, no part buffers. What ParallelEncryptor adds on top of Node shows against this; what
// Node's API costs on top of OpenSSL (an allocated output per cipher call) shows against openssl.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const MIB = 1 << 20;

// Plain JavaScript (eval: true): the worker encrypts `gib` GiB in 64 KiB calls (the encryptor's
// piece size), each output released at once, and reports when it is done.
const AES_WORKER = `
const { createCipheriv, randomBytes } = require('node:crypto');
const { parentPort, workerData } = require('node:worker_threads');
const key = randomBytes(32);
const input = Buffer.alloc(1 << 20, 7);
parentPort.once('message', () => {
  for (let s = 0; s < workerData.gib * 1024; s++) {
    const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
    for (let at = 0; at < input.length; at += 65536) cipher.update(input.subarray(at, at + 65536)).buffer.transfer(0);
    cipher.final();
    cipher.getAuthTag();
  }
  parentPort.postMessage('done');
});
parentPort.postMessage('ready');
`;

/** Wall-clock GiB/s of both passes over `gib` GiB, SHA-256 from `chunk` (as the encryptor's bench reads it). */
export async function nodeCryptoFloorGibPerSecond(chunk: Buffer, gib = 2): Promise<number> {
  const worker = new Worker(AES_WORKER, { eval: true, workerData: { gib } });
  try {
    await new Promise((resolve) => worker.once('message', resolve));
    const t0 = performance.now();
    const aes = new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    worker.postMessage('go');
    const hash = createHash('sha256');
    for (let done = 0; done < gib * 1024 * MIB; done += chunk.length)
      for (let at = 0; at < chunk.length; at += MIB) hash.update(chunk.subarray(at, at + MIB));
    hash.digest();
    await aes;
    return gib / ((performance.now() - t0) / 1000);
  } finally {
    await worker.terminate();
  }
}
