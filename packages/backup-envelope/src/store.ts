// The bucket, as the backup code needs it: small objects as text, the snapshot as a stream,
// listings, multipart clean-up. S3 failures become BackupError IO_FAILED naming the object.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BackupError, describeError } from './errors.ts';

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

  /** Streams `body` to `key` with a multipart upload of fixed part size (memory ~ parts in flight). */
  async upload(key: string, body: Readable, options: { partSize: number; queueSize: number; contentType?: string; onProgress?: (bytes: number) => void }): Promise<string | undefined> {
    const upload = new Upload({
      client: this.client,
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: options.contentType ?? 'application/octet-stream' },
    });
    if (options.onProgress) upload.on('httpUploadProgress', (p) => options.onProgress!(p.loaded ?? 0));
    try {
      const result = await upload.done();
      return result.ETag;
    } catch (error) {
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
