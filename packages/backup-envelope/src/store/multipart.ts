// Multipart uploads: the snapshot goes up in fixed-size parts from a small pool of reused
// buffers, and the uploads a failed job leaves behind are aborted.
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BufferPool } from '../parallel.ts';
import { isMissing, type StoreContext } from './context.ts';

/** One part of a multipart upload; `release` hands its buffer back once S3 has it. */
export interface UploadPart {
  data: Buffer;
  release?: () => void;
}

/**
 * Streams `body` to `key` with a multipart upload of fixed part size (our own, not lib-storage:
 * its Upload cannot tell when a part has been sent, so a pool of part buffers could not be
 * reused and every part would be a fresh allocation). The bytes are copied
 * into `queueSize + 1` reused part buffers (memory ~ parts in flight), then `uploadParts`.
 */
export async function upload(
  store: StoreContext,
  key: string,
  body: Readable,
  options: { partSize: number; queueSize: number; contentType?: string; onProgress?: (bytes: number) => void },
): Promise<string | undefined> {
  const pool = new BufferPool(options.partSize, options.queueSize + 1);
  async function* parts(): AsyncGenerator<UploadPart> {
    let part = await pool.take();
    let filled = 0;
    try {
      for await (const input of body) {
        const chunk = input as Buffer;
        let at = 0;
        while (at < chunk.length) {
          if (filled === part.length) {
            const full = part;
            yield { data: full, release: () => pool.give(full) };
            part = await pool.take();
            filled = 0;
          }
          const n = chunk.copy(part, filled, at);
          filled += n;
          at += n;
        }
      }
      const last = part;
      yield { data: last.subarray(0, filled), release: () => pool.give(last) };
    } finally {
      body.destroy();
    }
  }
  return uploadParts(store, key, parts(), options);
}

/**
 * A multipart upload of the given parts (every part but the last at least 5 MiB), `queueSize`
 * parts in flight; a single PUT when there is only one part. On a failure the multipart
 * upload is aborted (best effort: the caller retries the abort while S3 is away).
 */
export async function uploadParts(
  store: StoreContext,
  key: string,
  parts: AsyncIterable<UploadPart>,
  options: { queueSize: number; contentType?: string; onProgress?: (bytes: number) => void },
): Promise<string | undefined> {
  const iterator = parts[Symbol.asyncIterator]();
  const contentType = options.contentType ?? 'application/octet-stream';
  let uploadId: string | undefined;
  let failed = false;
  try {
    const first = await iterator.next();
    const second = first.done ? first : await iterator.next();
    if (second.done) {
      const data = first.done ? Buffer.alloc(0) : first.value.data;
      const response = await store.client.send(
        new PutObjectCommand({
          Bucket: store.bucket,
          Key: key,
          Body: data,
          ContentLength: data.length,
          ContentType: contentType,
        }),
        store.transfer(),
      );
      if (!first.done) first.value.release?.();
      options.onProgress?.(data.length);
      return response.ETag;
    }
    uploadId = (
      await store.client.send(
        new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: key, ContentType: contentType }),
      )
    ).UploadId;
    if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
    // `first` is a part here: had it been done, `second` would be done too and we returned above.
    const ready: UploadPart[] = [first.value as UploadPart, second.value];
    let nextNumber = 1;
    let uploaded = 0;
    const done: { PartNumber: number; ETag: string }[] = [];
    const take = async (): Promise<{ part: UploadPart; number: number } | undefined> => {
      const number = nextNumber++;
      const part = ready.shift() ?? (await iterator.next().then((r) => (r.done ? undefined : r.value)));
      return part && !failed ? { part, number } : undefined;
    };
    const worker = async () => {
      for (let item = await take(); item; item = await take()) {
        const { part, number } = item;
        const response = await store.client.send(
          new UploadPartCommand({
            Bucket: store.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: number,
            Body: part.data,
            ContentLength: part.data.length,
          }),
          store.transfer(),
        );
        if (!response.ETag) throw new Error(`part ${number} is missing its ETag in the UploadPart response`);
        done.push({ PartNumber: number, ETag: response.ETag });
        uploaded += part.data.length;
        part.release?.();
        options.onProgress?.(uploaded);
      }
    };
    const results = await Promise.allSettled(
      Array.from({ length: Math.max(1, options.queueSize) }, () =>
        worker().catch((error: unknown) => {
          failed = true;
          throw error;
        }),
      ),
    );
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    done.sort((a, b) => a.PartNumber - b.PartNumber);
    const response = await store.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: store.bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: done },
      }),
    );
    uploadId = undefined;
    return response.ETag;
  } catch (error) {
    failed = true;
    // Not awaited: a producer waiting for a buffer that a failed part still holds never resumes.
    void Promise.resolve(iterator.return?.(undefined)).catch(() => undefined);
    if (uploadId)
      await store.client
        .send(new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
    throw store.failure('upload', key, error);
  }
}

export async function abortMultipart(store: StoreContext, key: string, uploadId: string): Promise<void> {
  try {
    await store.client.send(
      new AbortMultipartUploadCommand({ Bucket: store.bucket, Key: key, UploadId: uploadId }),
      store.deadline(),
    );
  } catch (error) {
    if (isMissing(error)) return;
    throw store.failure('AbortMultipartUpload', key, error);
  }
}
