// The bucket, as the backup code needs it: small objects as text, the snapshot as a stream,
// listings, multipart clean-up. S3 failures become BackupError IO_FAILED naming the object.
//
// The bucket may be a tenant's own endpoint, so nothing it answers is trusted to end: small
// objects are read up to a size limit, every response the SDK parses (listings, errors) too,
// listings stop after a number of pages, and every request that is not a data transfer has a
// deadline. A store-wide signal (a caller's overall deadline) cancels everything.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, Transform } from 'node:stream';
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
  /** Largest object read whole (metadata.json, dek.wrapped); default 1 MiB. */
  maxObjectBytes?: number;
  /** Largest response body the SDK parses (a listing page, an error); default 4 MiB. */
  maxResponseBytes?: number;
  /** Pages one listing may take (1,000 keys each); default 1,000. */
  maxListPages?: number;
  /** Deadline of each request that is not a data transfer; default 30 s. */
  operationTimeoutMs?: number;
  /** Cancels every request of the store (a caller's overall deadline). */
  signal?: AbortSignal;
}

export const STORE_LIMITS = {
  maxObjectBytes: 1024 * 1024,
  maxResponseBytes: 4 * 1024 * 1024,
  maxListPages: 1000,
  operationTimeoutMs: 30_000,
} as const;

/** Fails a response body that grows past `max` bytes, instead of letting the SDK collect it. */
function limited(body: Readable, max: number, what: string): Readable {
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) {
        body.destroy();
        return done(
          new BackupError(
            'LIMIT_EXCEEDED',
            `the S3 ${what} response is larger than ${max} bytes: refusing to read it`,
            { limit: max },
          ),
        );
      }
      done(null, chunk);
    },
  });
  body.on('error', (error) => limiter.destroy(error));
  return body.pipe(limiter);
}

export function createS3Client(settings: S3Settings): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 32 };
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
    ...(settings.accessKeyId && settings.secretAccessKey
      ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
      : {}),
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
  // Between the deserializer and the HTTP handler: every body the SDK would collect (all but a
  // successful GetObject, which the caller streams) is cut at the limit.
  const maxResponse = settings.maxResponseBytes ?? STORE_LIMITS.maxResponseBytes;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const response = out.response as { statusCode?: number; body?: unknown };
      const streamed = context.commandName === 'GetObjectCommand' && (response.statusCode ?? 0) < 300;
      if (!streamed && response.body instanceof Readable)
        response.body = limited(response.body, maxResponse, context.commandName ?? 'request');
      return out;
    },
    { step: 'deserialize', priority: 'low', name: 'kdcResponseLimit' },
  );
  return client;
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
  /** Set by the server when the object was written (a bucket writer cannot choose it). */
  lastModified: Date | undefined;
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

export type StoreLimits = { -readonly [K in keyof typeof STORE_LIMITS]: number };

/** A BackupError carried by `error` or its causes (the SDK wraps what a body stream threw). */
function carriedBackupError(error: unknown): BackupError | undefined {
  for (let e = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof BackupError) return e;
  }
  return undefined;
}

export class BackupStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly limits: StoreLimits;
  private readonly signal: AbortSignal | undefined;

  constructor(client: S3Client, bucket: string, options: Partial<StoreLimits> & { signal?: AbortSignal } = {}) {
    this.client = client;
    this.bucket = bucket;
    const { signal, ...limits } = options;
    this.limits = { ...STORE_LIMITS, ...Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined)) };
    this.signal = signal;
  }

  static fromSettings(settings: S3Settings): BackupStore {
    const { maxObjectBytes, maxResponseBytes, maxListPages, operationTimeoutMs, signal } = settings;
    return new BackupStore(createS3Client(settings), settings.bucket, {
      maxObjectBytes,
      maxResponseBytes,
      maxListPages,
      operationTimeoutMs,
      signal,
    } as Partial<StoreLimits> & { signal?: AbortSignal });
  }

  url(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  /** The deadline of one request that is not a data transfer, joined with the store's own signal. */
  private deadline(): { abortSignal: AbortSignal } {
    const timeout = AbortSignal.timeout(this.limits.operationTimeoutMs);
    return { abortSignal: this.signal ? AbortSignal.any([timeout, this.signal]) : timeout };
  }

  /** The store's own signal, for data transfers (joined with the caller's). */
  private transfer(signal?: AbortSignal): { abortSignal?: AbortSignal } {
    const signals = [signal, this.signal].filter((s): s is AbortSignal => s !== undefined);
    return signals.length ? { abortSignal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) } : {};
  }

  private failure(operation: string, key: string, error: unknown, signal?: AbortSignal): BackupError {
    const carried = carriedBackupError(error);
    // The SDK appends a hint about the raw response to whatever its deserializer threw.
    if (carried)
      return carried.message.includes('\n')
        ? new BackupError(carried.code, carried.message.split('\n')[0]!, carried.details)
        : carried;
    const reason = signal?.aborted ? (signal.reason as { name?: string } | undefined) : undefined;
    if (reason?.name === 'TimeoutError') {
      return new BackupError(
        'IO_FAILED',
        `S3 ${operation} ${this.url(key)} did not finish within its deadline of ${this.limits.operationTimeoutMs} ms`,
        { operation, key },
        { cause: error },
      );
    }
    if (signal?.aborted)
      return new BackupError(
        'IO_FAILED',
        `S3 ${operation} ${this.url(key)} was cancelled: ${describeError(signal.reason)}`,
        { operation, key },
        { cause: error },
      );
    return new BackupError(
      'IO_FAILED',
      `S3 ${operation} ${this.url(key)} failed: ${describeError(error)}`,
      { operation, key, status: statusOf(error) },
      { cause: error },
    );
  }

  /** A small object, whole; refused (LIMIT_EXCEEDED) past maxObjectBytes, whatever the server announces. */
  async getText(key: string): Promise<ObjectText | null> {
    const { abortSignal } = this.deadline();
    const max = this.limits.maxObjectBytes;
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal });
      const body = response.Body as Readable;
      const tooLarge = () =>
        new BackupError(
          'LIMIT_EXCEEDED',
          `${this.url(key)} is larger than ${max} bytes: not a file this reader needs, refusing to read it`,
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
      throw this.failure('GetObject', key, error, abortSignal);
    }
  }

  async getStream(key: string, signal?: AbortSignal): Promise<ObjectStream | null> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
        this.transfer(signal),
      );
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
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
        this.transfer(signal),
      );
      for await (const chunk of response.Body as Readable) {
        const bytes = chunk as Buffer;
        if (filled + bytes.length > into.length)
          throw new Error(`range ${start}-${end - 1} returned more than ${into.length} bytes`);
        filled += bytes.copy(into, filled);
      }
    } catch (error) {
      throw this.failure('GetObject', key, error);
    }
    if (filled !== into.length)
      throw this.failure(
        'GetObject',
        key,
        new Error(`range ${start}-${end - 1} returned ${filled} of ${into.length} bytes`),
      );
  }

  async head(
    key: string,
  ): Promise<{ size: number | undefined; etag: string | undefined; lastModified: Date | undefined } | null> {
    const { abortSignal } = this.deadline();
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), {
        abortSignal,
      });
      return { size: response.ContentLength, etag: response.ETag, lastModified: response.LastModified };
    } catch (error) {
      if (isMissing(error)) return null;
      throw this.failure('HeadObject', key, error, abortSignal);
    }
  }

  /** PUT a small object; with `ifMatch` only if it still has that ETag (412 -> BackupError). */
  async putText(
    key: string,
    text: string,
    contentType: string,
    options: { ifMatch?: string } = {},
  ): Promise<string | undefined> {
    const { abortSignal } = this.deadline();
    try {
      const response = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
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
          `${this.url(key)} changed while we worked on it (If-Match failed): another job rewrote it; run again`,
          { key, status: 412 },
          { cause: error },
        );
      }
      throw this.failure('PutObject', key, error, abortSignal);
    }
  }

  /**
   * Streams `body` to `key` with a multipart upload of fixed part size (our own, not lib-storage:
   * its Upload cannot tell when a part has been sent, so a pool of part buffers could not be
   * reused and every part would be a fresh allocation). The bytes are copied
   * into `queueSize + 1` reused part buffers (memory ~ parts in flight), then `uploadParts`.
   */
  async upload(
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
    return this.uploadParts(key, parts(), options);
  }

  /**
   * A multipart upload of the given parts (every part but the last at least 5 MiB), `queueSize`
   * parts in flight; a single PUT when there is only one part. On a failure the multipart
   * upload is aborted (best effort: the caller retries the abort while S3 is away).
   */
  async uploadParts(
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
        const response = await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: data,
            ContentLength: data.length,
            ContentType: contentType,
          }),
          this.transfer(),
        );
        if (!first.done) first.value.release?.();
        options.onProgress?.(data.length);
        return response.ETag;
      }
      uploadId = (
        await this.client.send(
          new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
        )
      ).UploadId;
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
          const response = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: number,
              Body: part.data,
              ContentLength: part.data.length,
            }),
            this.transfer(),
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
      const response = await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
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
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
          .catch(() => undefined);
      throw this.failure('upload', key, error);
    }
  }

  /**
   * The pages of a ListObjectsV2 of `prefix`, at most maxListPages of them, each under its own
   * deadline; a server that repeats a continuation token or never stops is refused.
   */
  private async listPages(
    prefix: string,
    delimiter: string | undefined,
    onPage: (page: {
      CommonPrefixes?: { Prefix?: string }[];
      Contents?: { Key?: string; Size?: number; ETag?: string; LastModified?: Date }[];
    }) => void,
  ): Promise<void> {
    const seen = new Set<string>();
    let token: string | undefined;
    for (let pages = 0; ; pages++) {
      if (pages === this.limits.maxListPages) {
        throw new BackupError(
          'LIMIT_EXCEEDED',
          `listing ${this.url(prefix)} returned more than ${this.limits.maxListPages} pages (${this.limits.maxListPages * 1000} keys) and still says there are more: refusing to read on`,
          { prefix, limit: this.limits.maxListPages },
        );
      }
      const { abortSignal } = this.deadline();
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ContinuationToken: token,
          }),
          { abortSignal },
        );
      } catch (error) {
        throw this.failure('ListObjectsV2', prefix, error, abortSignal);
      }
      onPage(page);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (!token) return;
      if (seen.has(token))
        throw new BackupError(
          'LIMIT_EXCEEDED',
          `listing ${this.url(prefix)} repeats a continuation token: the server loops, refusing to read on`,
          { prefix },
        );
      seen.add(token);
    }
  }

  /** Every object under `prefix` (paginated). */
  async list(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    await this.listPages(prefix, undefined, (page) => {
      for (const o of page.Contents ?? [])
        out.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
    });
    return out;
  }

  /** One level below `prefix`: sub-prefixes ("directories") and the objects directly in it. */
  async listLevel(prefix: string): Promise<{ prefixes: string[]; objects: ListedObject[] }> {
    const prefixes: string[] = [];
    const objects: ListedObject[] = [];
    await this.listPages(prefix, '/', (page) => {
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      for (const o of page.Contents ?? [])
        objects.push({ key: o.Key!, size: o.Size ?? 0, etag: o.ETag, lastModified: o.LastModified });
    });
    return { prefixes, objects };
  }

  async anyUnder(prefix: string): Promise<boolean> {
    const { abortSignal } = this.deadline();
    try {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 }),
        { abortSignal },
      );
      return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
    } catch (error) {
      throw this.failure('ListObjectsV2', prefix, error, abortSignal);
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const { abortSignal } = this.deadline();
      try {
        const response = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
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
        throw this.failure('DeleteObjects', batch[0]!, error, abortSignal);
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
      for (let pages = 0; ; pages++) {
        if (pages === this.limits.maxListPages)
          throw new BackupError(
            'LIMIT_EXCEEDED',
            `listing the multipart uploads of ${this.url(prefix)} returned more than ${this.limits.maxListPages} pages`,
            { prefix },
          );
        const page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(requested ? { Prefix: requested } : {}),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          this.deadline(),
        );
        for (const u of page.Uploads ?? [])
          if (u.Key && u.UploadId && u.Key.startsWith(prefix))
            out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
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
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        this.deadline(),
      );
    } catch (error) {
      if (isMissing(error)) return;
      throw this.failure('AbortMultipartUpload', key, error);
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
