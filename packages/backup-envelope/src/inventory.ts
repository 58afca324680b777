// What backups a cluster has: for the CLI's `backups list`, the min_decryption_version
// pre-flight (minKeyVersion) and retention. A prefix without metadata.json is not a backup.
//
// Anyone who can write to the bucket can add files that claim any date. What orders backups
// ("latest", retention) is therefore only what such a writer cannot choose: the time the server
// recorded when the object was stored caps every claimed creation time (backupTime), plaintext
// files are never "latest", and a restore of "latest" by the job also checks the data key (verify.ts).
import { BackupError, isBackupError } from './errors.ts';
import { ENVELOPE_OBJECTS, parseBackupKey } from './layout.ts';
import { parseMetadata, wrappedVersion, type BackupMetadata } from './metadata.ts';
import type { BackupStore } from './store/store.ts';

export interface BackupInfo {
  /** `<cluster>/<cluster>-<timestamp>/` (envelope) or `<cluster>/<cluster>-<timestamp>.db` (plaintext). */
  key: string;
  kind: 'envelope' | 'plaintext';
  cluster: string;
  createdAt: Date;
  schemaVersion?: 1 | 2;
  algorithm?: string;
  transitKey?: string;
  /** Version of the wrapped DEK (read from wrappedDek itself). */
  transitKeyVersion?: number;
  plaintextSize?: number;
  /** Stored size of snapshot.db.enc (or of the .db file). */
  storedSize?: number;
  /** When the server stored snapshot.db.enc (or the .db file, or metadata.json when the snapshot is missing). */
  storedAt?: Date;
  metadata?: BackupMetadata;
  metadataETag?: string;
}

export interface Inventory {
  backups: BackupInfo[];
  /** Prefixes with objects but no metadata.json: failed or running uploads. */
  incomplete: string[];
  /** Prefixes whose metadata.json is unreadable, with the reason. */
  invalid: { key: string; error: string }[];
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** Every backup of `cluster`, oldest first. */
export async function listBackups(store: BackupStore, cluster: string): Promise<Inventory> {
  const { prefixes, objects } = await store.listLevel(`${cluster}/`);
  const backups: BackupInfo[] = [];
  const incomplete: string[] = [];
  const invalid: { key: string; error: string }[] = [];
  for (const object of objects) {
    const parsed = parseBackupKey(object.key);
    if (parsed?.kind === 'plaintext' && parsed.cluster === cluster) {
      backups.push({
        key: object.key,
        kind: 'plaintext',
        cluster,
        createdAt: parsed.createdAt,
        storedSize: object.size,
        ...(object.lastModified ? { storedAt: object.lastModified } : {}),
      });
    }
  }
  const envelopes = prefixes
    .map((p) => ({ prefix: p, parsed: parseBackupKey(p) }))
    .filter((p) => p.parsed?.kind === 'envelope' && p.parsed.cluster === cluster);
  const read = await mapLimit(envelopes, 16, async ({ prefix }) => {
    const [metadata, snapshot] = await Promise.all([
      store.getText(prefix + ENVELOPE_OBJECTS.metadata),
      store.head(prefix + ENVELOPE_OBJECTS.snapshot),
    ]);
    return { prefix, metadata, snapshot };
  });
  for (const { prefix, metadata, snapshot } of read) {
    if (!metadata) {
      incomplete.push(prefix);
      continue;
    }
    try {
      const m = parseMetadata(metadata.text, prefix);
      const storedAt = snapshot?.lastModified ?? metadata.lastModified;
      backups.push({
        key: prefix,
        kind: 'envelope',
        cluster,
        createdAt: new Date(m.createdAt),
        schemaVersion: m.schemaVersion,
        algorithm: m.algorithm,
        transitKey: m.transitKey,
        transitKeyVersion: wrappedVersion(m),
        ...(m.schemaVersion === 2 ? { plaintextSize: m.plaintextSize } : {}),
        ...(snapshot?.size !== undefined ? { storedSize: snapshot.size } : {}),
        ...(storedAt ? { storedAt } : {}),
        metadata: m,
        ...(metadata.etag ? { metadataETag: metadata.etag } : {}),
      });
    } catch (error) {
      if (!isBackupError(error)) throw error;
      invalid.push({ key: prefix, error: error.message });
    }
  }
  backups.sort((a, b) => backupTime(a).getTime() - backupTime(b).getTime() || a.key.localeCompare(b.key));
  return { backups, incomplete: incomplete.sort(), invalid };
}

/**
 * The time a backup is ordered and aged by: its claimed creation time, but never later than when
 * the server stored it. A far-future claim counts from its upload; a real backup's claim, made
 * before its upload finished, stands. Pure.
 */
export function backupTime(b: Pick<BackupInfo, 'createdAt' | 'storedAt'>): Date {
  return b.storedAt && b.storedAt.getTime() < b.createdAt.getTime() ? b.storedAt : b.createdAt;
}

/**
 * What "latest" may be, newest first: schemaVersion 2 envelopes only. A plaintext .db is not
 * authenticated at all, and a version-1 metadata.json does not bind its createdAt, so a bucket
 * writer could re-date an old one. Pure.
 */
export function latestCandidates<
  T extends Pick<BackupInfo, 'key' | 'kind' | 'schemaVersion' | 'createdAt' | 'storedAt'>,
>(backups: readonly T[]): T[] {
  return backups
    .filter((b) => b.kind === 'envelope' && b.schemaVersion !== 1)
    .sort((a, b) => backupTime(b).getTime() - backupTime(a).getTime() || b.key.localeCompare(a.key));
}

/**
 * The lowest Transit key version any envelope backup still needs (null when there is none):
 * min_decryption_version must not go above it.
 */
export function minKeyVersion(
  backups: readonly Pick<BackupInfo, 'kind' | 'transitKeyVersion'>[],
  transitKey?: string,
): number | null {
  let min: number | null = null;
  for (const b of backups as readonly BackupInfo[]) {
    if (b.kind !== 'envelope' || b.transitKeyVersion === undefined) continue;
    if (transitKey !== undefined && b.transitKey !== transitKey) continue;
    min = min === null ? b.transitKeyVersion : Math.min(min, b.transitKeyVersion);
  }
  return min;
}

/**
 * Retention: backups whose backupTime is more than `retentionDays` days before `now`, but never
 * `keep` (the backup the job just wrote), nor, without it, the newest candidate for "latest" (a
 * cluster whose backups stopped keeps its last good backup; a planted file is never that). Pure.
 */
export function backupsToDelete<
  T extends Pick<BackupInfo, 'key' | 'kind' | 'createdAt' | 'storedAt' | 'schemaVersion'>,
>(backups: readonly T[], retentionDays: number, now: Date, keep?: string): T[] {
  if (!Number.isFinite(retentionDays) || retentionDays < 0)
    throw new RangeError(`retentionDays must be >= 0, got ${retentionDays}`);
  const kept = keep ?? latestCandidates(backups)[0]?.key;
  const cutoff = now.getTime() - retentionDays * 86_400_000;
  return backups.filter((b) => b.key !== kept && backupTime(b).getTime() < cutoff);
}

/**
 * Applies retention after a successful backup `keep`: deletes the backups backupsToDelete names,
 * and unfinished prefixes past retention (aged by the server's time of their newest object, so a
 * far-future name is no shelter). Returns the keys deleted.
 */
export async function applyRetention(
  store: BackupStore,
  cluster: string,
  options: { retentionDays: number; now: Date; keep: string },
): Promise<string[]> {
  const inventory = await listBackups(store, cluster);
  const deleted: string[] = [];
  for (const old of backupsToDelete(inventory.backups, options.retentionDays, options.now, options.keep)) {
    await deleteBackup(store, old.key);
    deleted.push(old.key);
  }
  const cutoff = options.now.getTime() - options.retentionDays * 86_400_000;
  for (const prefix of inventory.incomplete) {
    const claimed = parseBackupKey(prefix)?.createdAt;
    const stored = (await store.list(prefix)).reduce<Date | undefined>(
      (a, o) => (o.lastModified && (!a || o.lastModified > a) ? o.lastModified : a),
      undefined,
    );
    if (claimed && backupTime({ createdAt: claimed, ...(stored ? { storedAt: stored } : {}) }).getTime() < cutoff) {
      await deleteBackup(store, prefix);
      deleted.push(prefix);
    }
  }
  return deleted;
}

/** Deletes one backup: metadata.json first, so a half-deleted backup is never listed as complete. */
export async function deleteBackup(store: BackupStore, key: string): Promise<void> {
  if (!key.endsWith('/')) {
    await store.delete([key]);
    return;
  }
  const parsed = parseBackupKey(key);
  if (parsed?.kind !== 'envelope')
    throw new BackupError('NOT_FOUND', `"${key}" is not a backup prefix <cluster>/<cluster>-<timestamp>/`);
  await store.delete([key + ENVELOPE_OBJECTS.metadata]);
  const rest = (await store.list(key)).map((o) => o.key);
  if (rest.length) await store.delete(rest);
}

/** Aborts multipart uploads under `prefix` started before `olderThan` (crashed jobs' leftovers). */
export async function sweepStaleUploads(store: BackupStore, prefix: string, olderThan: Date): Promise<number> {
  const stale = (await store.multipartUploads(prefix)).filter(
    (u) => u.initiated && u.initiated.getTime() < olderThan.getTime(),
  );
  for (const u of stale) await store.abortMultipart(u.key, u.uploadId);
  return stale.length;
}
