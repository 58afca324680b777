// Where backups live in the bucket (SPEC 6): `<cluster>/<cluster>-<timestamp>/` with three
// objects for an envelope backup, `<cluster>/<cluster>-<timestamp>.db` for a plaintext one.

export const ENVELOPE_OBJECTS = {
  snapshot: 'snapshot.db.enc',
  wrappedDek: 'dek.wrapped',
  metadata: 'metadata.json',
} as const;

/** Compact UTC timestamp that sorts lexicographically: 20260102T030405Z. */
export function backupTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function envelopePrefix(cluster: string, date: Date): string {
  return `${cluster}/${cluster}-${backupTimestamp(date)}/`;
}

export type BackupKind = 'envelope' | 'plaintext';

export interface ParsedBackupKey {
  kind: BackupKind;
  cluster: string;
  createdAt: Date;
}

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/\1-(\d{8}T\d{6}Z)(\/|\.db)$/;

/** Parses a restore-from key; null when it is neither layout (the caller says what is wrong). */
export function parseBackupKey(key: string): ParsedBackupKey | null {
  const match = KEY.exec(key);
  if (!match) return null;
  const [, cluster, , stamp, suffix] = match;
  const iso = `${stamp!.slice(0, 4)}-${stamp!.slice(4, 6)}-${stamp!.slice(6, 8)}T${stamp!.slice(9, 11)}:${stamp!.slice(11, 13)}:${stamp!.slice(13, 15)}Z`;
  const createdAt = new Date(iso);
  if (Number.isNaN(createdAt.getTime())) return null;
  return { kind: suffix === '/' ? 'envelope' : 'plaintext', cluster: cluster!, createdAt };
}
