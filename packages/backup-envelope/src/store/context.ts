// What every store operation shares: the client and bucket, the limits, a deadline per request
// and one way of naming a failure. The operations live in files by concern (objects, multipart,
// listing) and take this, so BackupStore stays the one object callers hold.
import type { S3Client } from '@aws-sdk/client-s3';
import { BackupError, describeError } from '../errors.ts';
import type { StoreLimits } from './client.ts';

export interface StoreContext {
  readonly client: S3Client;
  readonly bucket: string;
  readonly limits: StoreLimits;
  url(key: string): string;
  /** The deadline of one request that is not a data transfer, joined with the store's own signal. */
  deadline(): { abortSignal: AbortSignal };
  /** The store's own signal, for data transfers (joined with the caller's). */
  transfer(signal?: AbortSignal): { abortSignal?: AbortSignal };
  failure(operation: string, key: string, error: unknown, signal?: AbortSignal): BackupError;
}

interface S3ErrorShape {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export const statusOf = (error: unknown) => (error as S3ErrorShape)?.$metadata?.httpStatusCode;
export const isMissing = (error: unknown) => {
  const name = (error as S3ErrorShape)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(error) === 404;
};

/** A BackupError carried by `error` or its causes (the SDK wraps what a body stream threw). */
function carriedBackupError(error: unknown): BackupError | undefined {
  for (let e = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof BackupError) return e;
  }
  return undefined;
}

/** `limits` is the store's own object, not a copy: the operations see what the store sees. */
export function storeContext(
  client: S3Client,
  bucket: string,
  limits: StoreLimits,
  storeSignal: AbortSignal | undefined,
): StoreContext {
  const context: StoreContext = {
    client,
    bucket,
    limits,
    url(key: string): string {
      return `s3://${bucket}/${key}`;
    },
    deadline(): { abortSignal: AbortSignal } {
      const timeout = AbortSignal.timeout(limits.operationTimeoutMs);
      return { abortSignal: storeSignal ? AbortSignal.any([timeout, storeSignal]) : timeout };
    },
    transfer(signal?: AbortSignal): { abortSignal?: AbortSignal } {
      const signals = [signal, storeSignal].filter((s): s is AbortSignal => s !== undefined);
      return signals.length ? { abortSignal: signals.length === 1 ? signals[0]! : AbortSignal.any(signals) } : {};
    },
    failure(operation: string, key: string, error: unknown, signal?: AbortSignal): BackupError {
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
          `S3 ${operation} ${context.url(key)} did not finish within its deadline of ${limits.operationTimeoutMs} ms`,
          { operation, key },
          { cause: error },
        );
      }
      if (signal?.aborted)
        return new BackupError(
          'IO_FAILED',
          `S3 ${operation} ${context.url(key)} was cancelled: ${describeError(signal.reason)}`,
          { operation, key },
          { cause: error },
        );
      return new BackupError(
        'IO_FAILED',
        `S3 ${operation} ${context.url(key)} failed: ${describeError(error)}`,
        { operation, key, status: statusOf(error) },
        { cause: error },
      );
    },
  };
  return context;
}
