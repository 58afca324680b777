// Failures of an etcd read, with a machine-readable kind (the controller turns it into a condition
// reason, the CLI into a hint). Messages carry the endpoint, the prefix and etcd's own words,
// never a stored value.

export type EtcdReadErrorKind =
  /** The connection settings are wrong (endpoint syntax, TLS files that do not go together). */
  | 'config'
  /** No usable connection: etcd down, wrong address, or TLS refused (wrong CA, client certificate). */
  | 'unavailable'
  /** etcd answered but refused the client (auth enabled, no permission). */
  | 'refused'
  /** One call took longer than its deadline. */
  | 'deadline'
  /** The caller's AbortSignal fired. */
  | 'aborted'
  /** The scan's revision was compacted away while it ran; a new scan at a newer revision will do. */
  | 'compacted'
  /** One stored value is larger than the largest answer the reader accepts. */
  | 'too-large'
  /** etcd answered something a fixed-revision read cannot answer (a bug or a proxy in the way). */
  | 'inconsistent'
  | 'failed';

export class EtcdReadError extends Error {
  override readonly name = 'EtcdReadError';
  readonly kind: EtcdReadErrorKind;
  readonly grpcCode: number | undefined;
  constructor(kind: EtcdReadErrorKind, message: string, options: { grpcCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.grpcCode = options.grpcCode;
  }
}

export const isEtcdReadError = (error: unknown): error is EtcdReadError => error instanceof EtcdReadError;

// gRPC status codes (stable numbers, so mapping them does not need @grpc/grpc-js loaded).
const CODES = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Maps a gRPC failure of a Range call to an EtcdReadError that says what to check. */
export function rangeFailure(endpoint: string, what: string, error: unknown, aborted: boolean): EtcdReadError {
  if (error instanceof EtcdReadError) return error;
  const e = error as { code?: number; details?: string; message?: string };
  const detail = (e.details || e.message || String(error)).replace(/\s+/g, ' ').trim().slice(0, 300);
  const at = `etcd ${endpoint}: ${what}`;
  if (aborted) return new EtcdReadError('aborted', `${at}: cancelled`, { grpcCode: e.code, cause: error });
  switch (e.code) {
    case CODES.UNAVAILABLE:
      return new EtcdReadError(
        'unavailable',
        `${at}: ${detail}: is etcd listening there, and do the CA, client certificate and key match its TLS?`,
        { grpcCode: e.code, cause: error },
      );
    case CODES.UNAUTHENTICATED:
    case CODES.PERMISSION_DENIED:
      return new EtcdReadError(
        'refused',
        `${at}: etcd refused the client (${detail}); check the client certificate and its permissions`,
        { grpcCode: e.code, cause: error },
      );
    case CODES.DEADLINE_EXCEEDED:
      return new EtcdReadError('deadline', `${at}: no answer before the deadline (${detail})`, {
        grpcCode: e.code,
        cause: error,
      });
    case CODES.RESOURCE_EXHAUSTED:
      return new EtcdReadError('too-large', `${at}: the answer is larger than the reader accepts (${detail})`, {
        grpcCode: e.code,
        cause: error,
      });
    case CODES.OUT_OF_RANGE:
      if (/compacted/i.test(detail))
        return new EtcdReadError(
          'compacted',
          `${at}: the scan's revision was compacted while it ran (${detail}); scan again`,
          { grpcCode: e.code, cause: error },
        );
      break;
    case CODES.CANCELLED:
      return new EtcdReadError('aborted', `${at}: cancelled (${detail})`, { grpcCode: e.code, cause: error });
    default:
      // Any other code (or none): the generic failure below.
      break;
  }
  return new EtcdReadError('failed', `${at}: ${detail}`, { grpcCode: e.code, cause: error });
}
