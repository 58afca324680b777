// Single objects: small ones read whole under a size limit (metadata.json, dek.wrapped), the
// snapshot as a stream or in byte ranges, and the writes and deletes of small objects.
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { BackupError } from '../errors.ts';
import { isMissing, statusOf, type StoreContext } from './context.ts';

export interface ObjectText {
  text: string;
  etag: string | undefined;
  /** Set by the server when the object was written (a bucket writer cannot choose it). */
  lastModified: Date | undefined;
}

export interface ObjectStream {
  body: Readable;
  size: number | undefined;
  etag: string | undefined;
}

/** A small object, whole; refused (LIMIT_EXCEEDED) past maxObjectBytes, whatever the server announces. */
export async function getText(store: StoreContext, key: string): Promise<ObjectText | null> {
  const { abortSignal } = store.deadline();
  const max = store.limits.maxObjectBytes;
  try {
    const response = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }), { abortSignal });
    const body = response.Body as Readable;
    const tooLarge = () =>
      new BackupError(
        'LIMIT_EXCEEDED',
        `${store.url(key)} is larger than ${max} bytes: not a file this reader needs, refusing to read it`,
        { key, limit: max },
      );
    if (response.ContentLength !== undefined && response.ContentLength > max) {
      body.destroy();
      throw tooLarge();
    }
    const stop = () => body.destroy(new Error('deadline'));
    abortSignal.addEventListener('abort', stop, { once: true });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        if (size > max) {
          body.destroy();
          throw tooLarge();
        }
        chunks.push(chunk as Buffer);
      }
    } finally {
      abortSignal.removeEventListener('abort', stop);
    }
    return { text: Buffer.concat(chunks).toString('utf8'), etag: response.ETag, lastModified: response.LastModified };
  } catch (error) {
    if (isMissing(error)) return null;
    throw store.failure('GetObject', key, error, abortSignal);
  }
}

export async function getStream(store: StoreContext, key: string, signal?: AbortSignal): Promise<ObjectStream | null> {
  try {
    const response = await store.client.send(
      new GetObjectCommand({ Bucket: store.bucket, Key: key }),
      store.transfer(signal),
    );
    return { body: response.Body as Readable, size: response.ContentLength, etag: response.ETag };
  } catch (error) {
    if (isMissing(error)) return null;
    throw store.failure('GetObject', key, error);
  }
}

/**
 * Reads bytes `start..end-1` of `key` into `into` (which must hold exactly that many);
 * `onChunk` sees the size of each chunk copied (the socket's buffer is garbage after it).
 */
export async function getRange(
  store: StoreContext,
  key: string,
  start: number,
  end: number,
  into: Buffer,
  signal?: AbortSignal,
  onChunk?: (bytes: number) => void,
): Promise<void> {
  let filled = 0;
  try {
    const response = await store.client.send(
      new GetObjectCommand({ Bucket: store.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
      store.transfer(signal),
    );
    for await (const chunk of response.Body as Readable) {
      const bytes = chunk as Buffer;
      if (filled + bytes.length > into.length)
        throw new Error(`range ${start}-${end - 1} returned more than ${into.length} bytes`);
      filled += bytes.copy(into, filled);
      onChunk?.(bytes.length);
    }
  } catch (error) {
    throw store.failure('GetObject', key, error);
  }
  if (filled !== into.length)
    throw store.failure(
      'GetObject',
      key,
      new Error(`range ${start}-${end - 1} returned ${filled} of ${into.length} bytes`),
    );
}

export async function head(
  store: StoreContext,
  key: string,
): Promise<{ size: number | undefined; etag: string | undefined; lastModified: Date | undefined } | null> {
  const { abortSignal } = store.deadline();
  try {
    const response = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }), {
      abortSignal,
    });
    return { size: response.ContentLength, etag: response.ETag, lastModified: response.LastModified };
  } catch (error) {
    if (isMissing(error)) return null;
    throw store.failure('HeadObject', key, error, abortSignal);
  }
}

/** PUT a small object; with `ifMatch` only if it still has that ETag (412 -> BackupError). */
export async function putText(
  store: StoreContext,
  key: string,
  text: string,
  contentType: string,
  options: { ifMatch?: string } = {},
): Promise<string | undefined> {
  const { abortSignal } = store.deadline();
  try {
    const response = await store.client.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: key,
        Body: text,
        ContentType: contentType,
        ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
      }),
      { abortSignal },
    );
    return response.ETag;
  } catch (error) {
    if (options.ifMatch && statusOf(error) === 412) {
      throw new BackupError(
        'IO_FAILED',
        `${store.url(key)} changed while we worked on it (If-Match failed): another job rewrote it; run again`,
        { key, status: 412 },
        { cause: error },
      );
    }
    throw store.failure('PutObject', key, error, abortSignal);
  }
}

export async function deleteObjects(store: StoreContext, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const { abortSignal } = store.deadline();
    try {
      const response = await store.client.send(
        new DeleteObjectsCommand({
          Bucket: store.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
        { abortSignal },
      );
      const failed = response.Errors ?? [];
      if (failed.length)
        throw new Error(
          `${failed.length} object(s) not deleted, first ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`,
        );
    } catch (error) {
      throw store.failure('DeleteObjects', batch[0]!, error, abortSignal);
    }
  }
}
