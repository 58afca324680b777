// OpenBao answers errors as {"errors": [...]} with an HTTP status; callers branch on the status
// (404 missing, 403 denied, 400 invalid, 503 sealed) and on `kind`, never on message text.

export type OpenBaoErrorKind =
  'invalid' | 'denied' | 'not_found' | 'sealed' | 'rate_limited' | 'server' | 'unavailable';

export function errorKind(status: number): OpenBaoErrorKind {
  if (status === 0) return 'unavailable';
  if (status === 400 || status === 405) return 'invalid';
  if (status === 401 || status === 403) return 'denied';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status === 503) return 'sealed';
  return 'server';
}

export class OpenBaoError extends Error {
  readonly status: number;
  readonly kind: OpenBaoErrorKind;
  readonly errors: string[];
  readonly path: string;
  /** The response body, for batch endpoints that report per-item results alongside a 400. */
  readonly body: unknown;

  constructor(input: {
    status: number;
    errors: string[];
    path: string;
    method: string;
    body?: unknown;
    cause?: unknown;
  }) {
    const detail =
      input.errors.length > 0 ? input.errors.join('; ') : input.status === 0 ? 'unreachable' : `HTTP ${input.status}`;
    super(`OpenBao ${input.method} ${input.path}: ${input.status === 0 ? '' : `${input.status} `}${detail}`, {
      cause: input.cause,
    });
    this.name = 'OpenBaoError';
    this.status = input.status;
    this.kind = errorKind(input.status);
    this.errors = input.errors;
    this.path = input.path;
    this.body = input.body;
  }
}

export function isOpenBaoError(error: unknown, kind?: OpenBaoErrorKind): error is OpenBaoError {
  return error instanceof OpenBaoError && (kind === undefined || error.kind === kind);
}
