// What backups a cluster has: for the CLI's `backups list`, the min_decryption_version
// pre-flight (minKeyVersion) and retention. A prefix without metadata.json is not a backup.
import { BackupError, isBackupError } from './errors.ts';
import { ENVELOPE_OBJECTS, parseBackupKey } from './layout.ts';
import { parseMetadata, wrappedVersion, type BackupMetadata } from './metadata.ts';
import type { BackupStore } from './store.ts';

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
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
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
      backups.push({ key: object.key, kind: 'plaintext', cluster, createdAt: parsed.createdAt, storedSize: object.size });
    }
  }
  const envelopes = prefixes.map((p) => ({ prefix: p, parsed: parseBackupKey(p) })).filter((p) => p.parsed?.kind === 'envelope' && p.parsed.cluster === cluster);
  const read = await mapLimit(envelopes, 16, async ({ prefix }) => {
    const [metadata, snapshot] = await Promise.all([store.getText(prefix + ENVELOPE_OBJECTS.metadata), store.head(prefix + ENVELOPE_OBJECTS.snapshot)]);
    return { prefix, metadata, snapshot };
  });
  for (const { prefix, metadata, snapshot } of read) {
    if (!metadata) {
      incomplete.push(prefix);
      continue;
    }
    try {
      const m = parseMetadata(metadata.text, prefix);
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
        metadata: m,
        ...(metadata.etag ? { metadataETag: metadata.etag } : {}),
      });
    } catch (error) {
      if (!isBackupError(error)) throw error;
      invalid.push({ key: prefix, error: error.message });
    }
  }
  backups.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.key.localeCompare(b.key));
  return { backups, incomplete: incomplete.sort(), invalid };
}

/**
 * The lowest Transit key version any envelope backup still needs (null when there is none):
 * min_decryption_version must not go above it.
 */
export function minKeyVersion(backups: readonly Pick<BackupInfo, 'kind' | 'transitKeyVersion'>[], transitKey?: string): number | null {
  let min: number | null = null;
  for (const b of backups as readonly BackupInfo[]) {
    if (b.kind !== 'envelope' || b.transitKeyVersion === undefined) continue;
    if (transitKey !== undefined && b.transitKey !== transitKey) continue;
    min = min === null ? b.transitKeyVersion : Math.min(min, b.transitKeyVersion);
  }
  return min;
}

/**
 * Retention: backups created more than `retentionDays` days before `now`, but never the newest
 * one (a cluster whose backups stopped keeps its last good backup). Pure.
 */
export function backupsToDelete<T extends { key: string; createdAt: Date }>(backups: readonly T[], retentionDays: number, now: Date): T[] {
  if (!Number.isFinite(retentionDays) || retentionDays < 0) throw new RangeError(`retentionDays must be >= 0, got ${retentionDays}`);
  if (backups.length === 0) return [];
  const newest = backups.reduce((a, b) => (b.createdAt.getTime() > a.createdAt.getTime() ? b : a));
  const cutoff = now.getTime() - retentionDays * 86_400_000;
  return backups.filter((b) => b !== newest && b.createdAt.getTime() < cutoff);
}

/** Deletes one backup: metadata.json first, so a half-deleted backup is never listed as complete. */
export async function deleteBackup(store: BackupStore, key: string): Promise<void> {
  if (!key.endsWith('/')) {
    await store.delete([key]);
    return;
  }
  const parsed = parseBackupKey(key);
  if (parsed?.kind !== 'envelope') throw new BackupError('NOT_FOUND', `"${key}" is not a backup prefix <cluster>/<cluster>-<timestamp>/`);
  await store.delete([key + ENVELOPE_OBJECTS.metadata]);
  const rest = (await store.list(key)).map((o) => o.key);
  if (rest.length) await store.delete(rest);
}

/** Aborts multipart uploads under `prefix` started before `olderThan` (crashed jobs' leftovers). */
export async function sweepStaleUploads(store: BackupStore, prefix: string, olderThan: Date): Promise<number> {
  const stale = (await store.multipartUploads(prefix)).filter((u) => u.initiated && u.initiated.getTime() < olderThan.getTime());
  for (const u of stale) await store.abortMultipart(u.key, u.uploadId);
  return stale.length;
}
