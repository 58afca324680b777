// The bucket, as the backup code needs it: small objects as text, the snapshot as a stream,
// listings, multipart clean-up. S3 failures become BackupError IO_FAILED naming the object.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BackupError, describeError } from './errors.ts';
import { BufferPool } from './parallel.ts';

export interface S3Settings {
  /** http(s)://host:port; undefined = AWS. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing (MinIO, Ceph); default true when an endpoint is given. */
  forcePathStyle?: boolean;
  /** PEM bundle for an https endpoint signed by a private CA. */
  caPem?: string;
  /** SDK attempts per request (default 3). */
  maxAttempts?: number;
}

export function createS3Client(settings: S3Settings): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 32 };
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
    ...(settings.accessKeyId && settings.secretAccessKey ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } } : {}),
    // The envelope authenticates every byte end to end; the SDK's default CRC32 on every part
    // costs CPU and some S3-compatible stores reject it (aws-sdk-js-v3#6750).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: settings.maxAttempts ?? 3,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent({ ...agentOptions, ...(settings.caPem ? { ca: settings.caPem } : {}) }),
      connectionTimeout: 10_000,
      // Socket idle timeout: a stalled S3 fails the request instead of hanging the job.
      requestTimeout: 120_000,
    },
  });
}

interface S3ErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const statusOf = (error: unknown) => (error as S3ErrorShape)?.$metadata?.httpStatusCode;
const isMissing = (error: unknown) => {
  const name = (error as S3ErrorShape)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404;
};

export interface ObjectText {
  text: string;
  etag: string | undefined;
}

export interface ObjectStream {
  body: Readable;
  size: number | undefined;
  etag: string | undefined;
}

/** One part of a multipart upload; `release` hands its buffer back once S3 has it. */
export interface UploadPart {
  data: Buffer;
  release?: () => void;
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string | undefined;
  lastModified: Date | undefined;
}

export class BackupStore {
  readonly client: S3Client;
  readonly bucket: string;

  constructor(client: S3Client, bucket: string) {
    this.client = client;
    this.bucket = bucket;
  }

  static fromSettings(settings: S3Settings): BackupStore {
    return new BackupStore(createS3Client(settings), settings.bucket);
  }

  url(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  private failure(operation: string, key: string, error: unknown): BackupError {
    if (error instanceof BackupError) return error;
    return new BackupError('IO_FAILED', `S3 ${operation} ${this.url(key)} failed: ${describeError(error)}`, { operation, key, status: statusOf(error) }, { cause: error });
  }

  async getText(key: string): Promise<ObjectText | null> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { text: await response.Body!.transformToString('utf8'), etag: response.ETag };
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.failure('GetObject', key, error);
    }
  }

  async getStream(key: string, signal?: AbortSignal): Promise<ObjectStream | null> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), signal ? { abortSignal: signal } : {});
      return { body: response.Body as Readable, size: response.ContentLength, etag: response.ETag };
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.failure('GetObject', key, error);
    }
  }

  /** Reads bytes `start..end-1` of `key` into `into` (which must hold exactly that many). */
  async getRange(key: string, start: number, end: number, into: Buffer, signal?: AbortSignal): Promise<void> {
    let filled = 0;
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }), signal ? { abortSignal: signal } : {});
      for await (const chunk of response.Body as Readable) {
        const bytes = chunk as Buffer;
        if (filled + bytes.length > into.length) throw new Error(`range ${start}-${end - 1} returned more than ${into.length} bytes`);
        filled += bytes.copy(into, filled);
      }
    } catch (error) {
      throw this.failure('GetObject', key, error);
    }
    if (filled !== into.length) throw this.failure('GetObject', key, new Error(`range ${start}-${end - 1} returned ${filled} of ${into.length} bytes`));
  }

  async head(key: string): Promise<{ size: number | undefined; etag: string | undefined } | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: response.ContentLength, etag: response.ETag };
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.failure('HeadObject', key, error);
    }
  }

  /** PUT a small object; with `ifMatch` only if it still has that ETag (412 -> BackupError). */
  async putText(key: string, text: string, contentType: string, options: { ifMatch?: string } = {}): Promise<string | undefined> {
    try {
      const response = await this.client.send(new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: text,
        ContentType: contentType,
        ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
      }));
      return response.ETag;
    } catch (error) {
      if (options.ifMatch && statusOf(error) === 412) {
        throw new BackupError('IO_FAILED', `${this.url(key)} changed while we worked on it (If-Match failed): another job rewrote it; run again`, { key, status: 412 }, { cause: error });
      }
      throw this.failure('PutObject', key, error);
    }
  }

  /**
   * Streams `body` to `key` with a multipart upload of fixed part size (our own, not lib-storage:
   * its Upload cannot tell when a part has been sent, so a pool of part buffers could not be
   * reused and every part would be a fresh allocation). The bytes are copied
   * into `queueSize + 1` reused part buffers (memory ~ parts in flight), then `uploadParts`.
   */
  async upload(key: string, body: Readable, options: { partSize: number; queueSize: number; contentType?: string; onProgress?: (bytes: number) => void }): Promise<string | undefined> {
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
    return this.uploadParts(key, parts(), options);
  }

  /**
   * A multipart upload of the given parts (every part but the last at least 5 MiB), `queueSize`
   * parts in flight; a single PUT when there is only one part. On a failure the multipart
   * upload is aborted (best effort: the caller retries the abort while S3 is away).
   */
  async uploadParts(key: string, parts: AsyncIterable<UploadPart>, options: { queueSize: number; contentType?: string; onProgress?: (bytes: number) => void }): Promise<string | undefined> {
    const iterator = parts[Symbol.asyncIterator]();
    const contentType = options.contentType ?? 'application/octet-stream';
    let uploadId: string | undefined;
    let failed = false;
    try {
      const first = await iterator.next();
      const second = first.done ? first : await iterator.next();
      if (second.done) {
        const data = first.done ? Buffer.alloc(0) : first.value.data;
        const response = await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data, ContentLength: data.length, ContentType: contentType }));
        if (!first.done) first.value.release?.();
        options.onProgress?.(data.length);
        return response.ETag;
      }
      uploadId = (await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }))).UploadId;
      if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      const ready: UploadPart[] = [first.value, second.value];
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
          const response = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: part.data, ContentLength: part.data.length }));
          if (!response.ETag) throw new Error(`part ${number} is missing its ETag in the UploadPart response`);
          done.push({ PartNumber: number, ETag: response.ETag });
          uploaded += part.data.length;
          part.release?.();
          options.onProgress?.(uploaded);
        }
      };
      const results = await Promise.allSettled(Array.from({ length: Math.max(1, options.queueSize) }, () => worker().catch((error: unknown) => {
        failed = true;
        throw error;
      })));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      done.sort((a, b) => a.PartNumber - b.PartNumber);
      const response = await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }));
      uploadId = undefined;
      return response.ETag;
    } catch (error) {
      failed = true;
      // Not awaited: a producer waiting for a buffer that a failed part still holds never resumes.
      void Promise.resolve(iterator.return?.(undefined)).catch(() => undefined);
      if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw this.failure('upload', key, error);
    }
  }

  /** Every object under `prefix` (paginated). */
  async list(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.failure('ListObjectsV2', prefix, error);
    }
    return out;
  }

  /** One level below `prefix`: sub-prefixes ("directories") and the objects directly in it. */
  async listLevel(prefix: string): Promise<{ prefixes: string[]; objects: ListedObject[] }> {
    const prefixes: string[] = [];
    const objects: ListedObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
        for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
        for (const o of page.Contents ?? []) objects.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.failure('ListObjectsV2', prefix, error);
    }
    return { prefixes, objects };
  }

  async anyUnder(prefix: string): Promise<boolean> {
    try {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 }));
      return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
    } catch (error) {
      throw this.failure('ListObjectsV2', prefix, error);
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const response = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
        const failed = response.Errors ?? [];
        if (failed.length) throw new Error(`${failed.length} object(s) not deleted, first ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`);
      } catch (error) {
        throw this.failure('DeleteObjects', batch[0]!, error);
      }
    }
  }

  /**
   * Unfinished multipart uploads whose key starts with `prefix`. MinIO only honours a prefix that
   * is a whole object key, so an empty answer is checked against the unfiltered listing.
   */
  async multipartUploads(prefix: string): Promise<{ key: string; uploadId: string; initiated: Date | undefined }[]> {
    const listing = async (requested: string) => {
      const out: { key: string; uploadId: string; initiated: Date | undefined }[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, ...(requested ? { Prefix: requested } : {}), KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
        for (const u of page.Uploads ?? []) if (u.Key && u.UploadId && u.Key.startsWith(prefix)) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        uploadIdMarker = page.NextUploadIdMarker;
      }
      return out;
    };
    try {
      const found = await listing(prefix);
      return found.length || !prefix ? found : await listing('');
    } catch (error) {
      throw this.failure('ListMultipartUploads', prefix, error);
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (isMissing(error)) return;
      throw this.failure('AbortMultipartUpload', key, error);
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}

