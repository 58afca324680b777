// The bucket, as the backup code needs it: small objects as text, the snapshot as a stream,
// listings, multipart clean-up. S3 failures become BackupError IO_FAILED naming the object.
//
// The bucket may be a tenant's own endpoint, so nothing it answers is trusted to end: small
// objects are read up to a size limit, every response the SDK parses (listings, errors) too,
// listings stop after a number of pages, and every request that is not a data transfer has a
// deadline. A store-wide signal (a caller's overall deadline) cancels everything.
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { STORE_LIMITS, createS3Client, type S3Settings, type StoreLimits } from './client.ts';
import { storeContext, type StoreContext } from './context.ts';
import * as listing from './listing.ts';
import type { ListedObject } from './listing.ts';
import * as multipart from './multipart.ts';
import type { UploadPart } from './multipart.ts';
import * as objects from './objects.ts';
import type { ObjectStream, ObjectText } from './objects.ts';

export class BackupStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly limits: StoreLimits;
  private readonly context: StoreContext;

  constructor(client: S3Client, bucket: string, options: Partial<StoreLimits> & { signal?: AbortSignal } = {}) {
    this.client = client;
    this.bucket = bucket;
    const { signal, ...limits } = options;
    this.limits = { ...STORE_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
    this.context = storeContext(client, bucket, this.limits, signal);
  }

  static fromSettings(settings: S3Settings): BackupStore {
    const { maxObjectBytes, maxResponseBytes, maxListPages, operationTimeoutMs, signal } = settings;
    return new BackupStore(createS3Client(settings), settings.bucket, {
      maxObjectBytes,
      maxResponseBytes,
      maxListPages,
      operationTimeoutMs,
      signal,
    });
  }

  url(key: string): string {
    return this.context.url(key);
  }

  /** A small object, whole; refused (LIMIT_EXCEEDED) past maxObjectBytes, whatever the server announces. */
  getText(key: string): Promise<ObjectText | null> {
    return objects.getText(this.context, key);
  }

  getStream(key: string, signal?: AbortSignal): Promise<ObjectStream | null> {
    return objects.getStream(this.context, key, signal);
  }

  /** Reads bytes `start..end-1` of `key` into `into` (which must hold exactly that many). */
  getRange(
    key: string,
    start: number,
    end: number,
    into: Buffer,
    signal?: AbortSignal,
    onChunk?: (bytes: number) => void,
  ): Promise<void> {
    return objects.getRange(this.context, key, start, end, into, signal, onChunk);
  }

  head(
    key: string,
  ): Promise<{ size: number | undefined; etag: string | undefined; lastModified: Date | undefined } | null> {
    return objects.head(this.context, key);
  }

  /** PUT a small object; with `ifMatch` only if it still has that ETag (412 -> BackupError). */
  putText(
    key: string,
    text: string,
    contentType: string,
    options: { ifMatch?: string } = {},
  ): Promise<string | undefined> {
    return objects.putText(this.context, key, text, contentType, options);
  }

  /** Streams `body` to `key` in fixed-size parts from `queueSize + 1` reused buffers. */
  upload(
    key: string,
    body: Readable,
    options: { partSize: number; queueSize: number; contentType?: string; onProgress?: (bytes: number) => void },
  ): Promise<string | undefined> {
    return multipart.upload(this.context, key, body, options);
  }

  /** A multipart upload of the given parts, `queueSize` in flight; a single PUT for one part. */
  uploadParts(
    key: string,
    parts: AsyncIterable<UploadPart>,
    options: { queueSize: number; contentType?: string; onProgress?: (bytes: number) => void },
  ): Promise<string | undefined> {
    return multipart.uploadParts(this.context, key, parts, options);
  }

  /** Every object under `prefix` (paginated). */
  list(prefix: string): Promise<ListedObject[]> {
    return listing.list(this.context, prefix);
  }

  /** One level below `prefix`: sub-prefixes ("directories") and the objects directly in it. */
  listLevel(prefix: string): Promise<{ prefixes: string[]; objects: ListedObject[] }> {
    return listing.listLevel(this.context, prefix);
  }

  anyUnder(prefix: string): Promise<boolean> {
    return listing.anyUnder(this.context, prefix);
  }

  delete(keys: string[]): Promise<void> {
    return objects.deleteObjects(this.context, keys);
  }

  /** Unfinished multipart uploads whose key starts with `prefix`. */
  multipartUploads(prefix: string): Promise<{ key: string; uploadId: string; initiated: Date | undefined }[]> {
    return listing.multipartUploads(this.context, prefix);
  }

  abortMultipart(key: string, uploadId: string): Promise<void> {
    return multipart.abortMultipart(this.context, key, uploadId);
  }

  destroy(): void {
    this.client.destroy();
  }
}
