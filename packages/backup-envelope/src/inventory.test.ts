import { describe, expect, it } from 'vitest';
import { backupsToDelete, minKeyVersion, type BackupInfo } from './inventory.ts';

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

describe('minKeyVersion', () => {
  it('is the lowest wrapped-key version of envelope backups', () => {
    expect(minKeyVersion([backup(3, 4), backup(2, 2), backup(1, 3)])).toBe(2);
    expect(minKeyVersion([backup(1, 5), { ...backup(0), kind: 'plaintext' }])).toBe(5);
    expect(minKeyVersion([])).toBeNull();
    expect(minKeyVersion([backup(1, 1, { transitKey: 'other' }), backup(0, 3)], 'k')).toBe(3);
  });
});
