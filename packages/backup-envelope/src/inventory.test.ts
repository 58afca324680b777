import { describe, expect, it } from 'vitest';
import { backupTime, backupsToDelete, latestCandidates, minKeyVersion, type BackupInfo } from './inventory.ts';

const day = 86_400_000;
const now = new Date('2026-05-10T02:00:00Z');
const backup = (daysAgo: number, version?: number, extra: Partial<BackupInfo> = {}): BackupInfo => ({
  key: `prod/prod-${daysAgo}/`,
  kind: 'envelope',
  cluster: 'prod',
  createdAt: new Date(now.getTime() - daysAgo * day),
  ...(version !== undefined ? { transitKeyVersion: version, transitKey: 'k' } : {}),
  ...extra,
});

describe('retention', () => {
  it('deletes what is older than retentionDays', () => {
    const all = [backup(10), backup(8), backup(7.5), backup(6.9), backup(1), backup(0)];
    expect(backupsToDelete(all, 7, now).map((b) => b.key)).toEqual(['prod/prod-10/', 'prod/prod-8/', 'prod/prod-7.5/']);
  });

  it('never deletes the newest backup, however old', () => {
    const all = [backup(40), backup(30), backup(20)];
    expect(backupsToDelete(all, 7, now).map((b) => b.key)).toEqual(['prod/prod-40/', 'prod/prod-30/']);
    expect(backupsToDelete([backup(100)], 1, now)).toEqual([]);
    expect(backupsToDelete([], 7, now)).toEqual([]);
  });

  it('keeps a backup exactly at the boundary and is order-independent', () => {
    const all = [backup(0), backup(7), backup(7.001)];
    expect(backupsToDelete(all, 7, now).map((b) => b.key)).toEqual(['prod/prod-7.001/']);
    expect(backupsToDelete([...all].reverse(), 7, now).map((b) => b.key)).toEqual(['prod/prod-7.001/']);
  });

  it('refuses a negative retention', () => {
    expect(() => backupsToDelete([backup(1)], -1, now)).toThrow(RangeError);
  });
});

describe('what a bucket writer can claim (finding 9)', () => {
  const stored = (daysAgo: number) => new Date(now.getTime() - daysAgo * day);
  const planted = (key: string, kind: BackupInfo['kind'], storedDaysAgo: number): BackupInfo => ({
    key,
    kind,
    cluster: 'prod',
    createdAt: new Date('9999-12-31T23:59:59Z'),
    storedAt: stored(storedDaysAgo),
    ...(kind === 'envelope' ? { schemaVersion: 2 as const } : {}),
  });

  it.each([
    [
      'a real backup: its claim, made before the upload ended',
      { createdAt: stored(1), storedAt: stored(0.99) },
      stored(1),
    ],
    [
      'a far-future claim: when the server stored it',
      { createdAt: new Date('9999-12-31T23:59:59Z'), storedAt: stored(3) },
      stored(3),
    ],
    ['nothing stored known: the claim', { createdAt: stored(2) }, stored(2)],
  ])('backupTime: %s', (_, b, expected) => expect(backupTime(b)).toEqual(expected));

  it('"latest" is the newest schemaVersion 2 envelope by backupTime, never a plaintext or version-1 file', () => {
    const real = { ...backup(1), schemaVersion: 2 as const, storedAt: stored(1) };
    const older = { ...backup(2), schemaVersion: 2 as const, storedAt: stored(2) };
    const v1 = { ...backup(0.5), schemaVersion: 1 as const, storedAt: stored(0) };
    const db = planted('prod/prod-99991231T235959Z.db', 'plaintext', 0);
    expect(latestCandidates([db, older, v1, real]).map((b) => b.key)).toEqual([real.key, older.key]);
    // An envelope planted after the last real backup is a candidate: the job verifies it and skips it.
    const envelope = planted('prod/prod-99991230T000000Z/', 'envelope', 0.1);
    expect(latestCandidates([real, envelope])[0]!.key).toBe(envelope.key);
  });

  it('retention ages planted files from their upload and keeps the backup the run wrote', () => {
    const db = planted('prod/prod-99991231T235959Z.db', 'plaintext', 10);
    const envelope = planted('prod/prod-99991230T000000Z/', 'envelope', 9);
    const written = { ...backup(0), schemaVersion: 2 as const, storedAt: stored(0) };
    expect(backupsToDelete([db, envelope, backup(8), written], 7, now, written.key).map((b) => b.key)).toEqual([
      db.key,
      envelope.key,
      'prod/prod-8/',
    ]);
    // Without the run's key the newest candidate stays, however old: a plaintext file never does.
    expect(backupsToDelete([db, backup(30)], 7, now).map((b) => b.key)).toEqual([db.key]);
  });
});

describe('minKeyVersion', () => {
  it('is the lowest wrapped-key version of envelope backups', () => {
    expect(minKeyVersion([backup(3, 4), backup(2, 2), backup(1, 3)])).toBe(2);
    expect(minKeyVersion([backup(1, 5), { ...backup(0), kind: 'plaintext' }])).toBe(5);
    expect(minKeyVersion([])).toBeNull();
    expect(minKeyVersion([backup(1, 1, { transitKey: 'other' }), backup(0, 3)], 'k')).toBe(3);
  });
});
