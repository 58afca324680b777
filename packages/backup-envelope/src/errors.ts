// Every refusal has its own code, so callers (the CLI, k8-manager's restore flow, tests) branch
// on what went wrong, and the message says what to look at. Messages never carry key material,
// plaintext or ciphertext; at most sizes, offsets, segment numbers and object keys.

export type BackupErrorCode =
  /** The prefix has no metadata.json: an upload that never finished (or is still running). */
  | 'INCOMPLETE_BACKUP'
  /** metadata.json is not JSON, lacks fields, or its fields contradict each other. */
  | 'INVALID_METADATA'
  /** schemaVersion or algorithm this reader does not know. */
  | 'UNSUPPORTED_FORMAT'
  /** The backup belongs to another cluster than the one being restored. */
  | 'WRONG_CLUSTER'
  /** Transit cannot unwrap the data key with the named key, or the key is not the expected one. */
  | 'WRONG_KEY'
  /** metadata.json and snapshot.db.enc belong to different backups (salt or segment size differ). */
  | 'METADATA_MISMATCH'
  /** metadata.json was edited: bound fields, the data key, the hash or the size no longer match. */
  | 'METADATA_ALTERED'
  /** snapshot.db.enc does not start with a valid header. */
  | 'HEADER_INVALID'
  /** A segment's bytes were altered. */
  | 'SEGMENT_TAMPERED'
  /** A segment from later in the file appears too early. */
  | 'SEGMENT_REORDERED'
  /** A segment appears a second time. */
  | 'SEGMENT_DUPLICATED'
  /** The file ends before its final segment. */
  | 'TRUNCATED'
  /** Bytes follow the final segment. */
  | 'TRAILING_DATA'
  /** The etcd snapshot itself is inconsistent (its trailing SHA-256), or a v1 file's hash differs. */
  | 'SNAPSHOT_CORRUPT'
  /** The restore destination exists and is not empty. */
  | 'DESTINATION_NOT_EMPTY'
  /** A backup with the same name already exists. */
  | 'BACKUP_EXISTS'
  /** The backup named does not exist. */
  | 'NOT_FOUND'
  /** A plaintext `.db` file: nothing authenticates it, so it is restored only when a person confirms. */
  | 'UNAUTHENTICATED_BACKUP'
  /** The bucket answered more than a read may take (object size, response size, listing pages). */
  | 'LIMIT_EXCEEDED'
  /** S3, etcd or etcdutl failed. */
  | 'IO_FAILED';

export class BackupError extends Error {
  readonly code: BackupErrorCode;
  /** Machine-readable context (segment index, sizes, keys); never secrets. */
  readonly details: Record<string, unknown>;

  constructor(
    code: BackupErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackupError';
    this.code = code;
    this.details = details;
  }
}

export function isBackupError(error: unknown, code?: BackupErrorCode): error is BackupError {
  return error instanceof BackupError && (code === undefined || error.code === code);
}

/** Best-effort, secret-free one-line description of any error (for logs and CLI output). */
export function describeError(error: unknown): string {
  if (error instanceof BackupError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const name = error.name && error.name !== 'Error' ? `${error.name}: ` : '';
    return `${name}${error.message}${typeof code === 'string' && !error.message.includes(code) ? ` (${code})` : ''}`.slice(
      0,
      500,
    );
  }
  return String(error).slice(0, 500);
}
