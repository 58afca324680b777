// One error type for every refusal: the exit code says whether the invocation was wrong (2) or
// the platform said no / something failed (1). Messages never carry tokens, keys or data.

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class CliError extends Error {
  readonly code: 1 | 2;
  constructor(code: 1 | 2, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, message);
export const failure = (message: string, cause?: unknown) =>
  new CliError(EXIT.failure, message, cause === undefined ? undefined : { cause });

/** The message of anything thrown, without stack or cause chains. */
export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
