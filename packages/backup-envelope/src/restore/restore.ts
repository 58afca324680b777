// Restore: check metadata.json against what is being restored, then ONE streaming pass that
// downloads, verifies and decrypts each segment into a 0600 temp file next to the destination.
// Only after the final segment and the whole-plaintext SHA-256 verified is the file renamed into
// place (or handed to `etcdutl snapshot restore`, whose data dir is renamed into place). Any
// failure removes the temp files: the destination is never created or touched.
//
// Why one pass with a temp file rather than verify-then-decrypt: one download instead of two,
// and with the segmented format nothing unauthenticated is ever written (each segment is
// verified before its plaintext leaves memory); the temp file only holds a verified prefix until
// the end. (A schemaVersion 1 file has a single tag, so its temp file holds unverified plaintext
// until the end; it is 0600, and removed on failure.)
//
// Three steps: locate (the backup key -> metadata.json, checked, and the snapshot object),
// decoderFor (the format version -> the reader that verifies it, including the ranged fast path)
// and writeDestination (the temp file, then the file or data dir).
import type { Logger, TransitClient } from '@kdc/shared';
import type { BackupStore } from '../store/store.ts';
import { decoderFor, transitUnwrap } from './decode.ts';
import { checkBackupKey, locate, type RestoreRequest } from './locate.ts';
import { claimDestination, writeDestination, type RestoreDestination } from './write.ts';

export type { RestoreDestination };

export interface RestoreOptions extends RestoreRequest {
  store: BackupStore;
  /** Transit client allowed decrypt on the backup's key (not needed for plaintext .db backups). */
  transit?: TransitClient;
  destination: RestoreDestination;
  logger?: Logger;
  progressIntervalMs?: number;
  /** Cancels the restore (SIGTERM): temp files are removed, the destination is not touched. */
  signal?: AbortSignal;
}

export interface RestoreResult {
  key: string;
  schemaVersion: 0 | 1 | 2;
  plaintextSize: number;
  sha256?: string;
  destination: string;
  durationMs: number;
}

export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const started = performance.now();
  const { store, logger } = options;
  // Refusals in order of cost: the key itself, then the destination, then the bucket; a restore
  // into an occupied destination reads nothing from the bucket.
  const kind = checkBackupKey(store, options);
  const claimed = await claimDestination(options.destination);

  const located = await locate(store, options, kind);
  const decoder = decoderFor(located, { store, unwrap: transitUnwrap(options.transit), signal: options.signal });
  const verified = await writeDestination(claimed, decoder, {
    backupUrl: store.url(options.key),
    storedSize: located.storedSize,
    logger,
    progressIntervalMs: options.progressIntervalMs,
    signal: options.signal,
  });

  const durationMs = Math.round(performance.now() - started);
  logger?.info(
    { key: store.url(options.key), destination: claimed.target, plaintextBytes: verified.plaintextSize, durationMs },
    'restore complete',
  );
  return {
    key: options.key,
    schemaVersion: decoder.schemaVersion,
    plaintextSize: verified.plaintextSize,
    ...(verified.sha256 ? { sha256: verified.sha256.toString('hex') } : {}),
    destination: claimed.target,
    durationMs,
  };
}
