// The S3 client the store drives. The bucket may be a tenant's own endpoint, so the client
// itself cuts every response body it would collect at a limit: nothing the server answers is
// trusted to end.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, Transform } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { BackupError } from '../errors.ts';

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

export type StoreLimits = { -readonly [K in keyof typeof STORE_LIMITS]: number };

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
