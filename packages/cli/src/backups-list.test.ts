import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '@kdc/backup-envelope';
import { lowestVersions, publicBackup, renderInventory } from './backups-list.ts';
import { outcomeLine, summaryLine } from './backups-rewrap.ts';

const backup = (key: string, v: number, transitKey = 'ns-c-etcd'): BackupInfo => ({
  key,
  kind: 'envelope',
  cluster: 'c',
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  transitKey,
  transitKeyVersion: v,
  storedSize: 5 * 1024 * 1024,
  metadata: { wrappedDek: 'vault:v1:SECRETWRAPPED' } as unknown as BackupInfo['metadata'],
});

describe('backups list output', () => {
  const backups = [backup('c/c-20260102T030405Z/', 1), backup('c/c-20260103T030405Z/', 2), backup('c/c-20260104T030405Z/', 3, 'ns-other'), { key: 'c/c-20260101T000000Z.db', kind: 'plaintext' as const, cluster: 'c', createdAt: new Date('2026-01-01T00:00:00Z'), storedSize: 100 }];

  it('renders the table, warnings and the lowest version per key', () => {
    const text = renderInventory('s3://b/c/', { backups, incomplete: ['c/c-20260105T000000Z/'], invalid: [{ key: 'c/c-20260106T000000Z/', error: 'metadata.json: broken' }] });
    expect(text.split('\n')[0]).toMatch(/^KEY\s+CREATED\s+TRANSIT KEY\s+VERSION\s+SIZE$/);
    expect(text).toMatch(/c\/c-20260102T030405Z\/\s+2026-01-02T03:04:05Z\s+ns-c-etcd\s+v1\s+5\.0 MiB/);
    expect(text).toMatch(/c\/c-20260101T000000Z\.db\s+2026-01-01T00:00:00Z\s+\(plaintext\)\s+-\s+100 B/);
    expect(text).toContain('warning: c/c-20260105T000000Z/ is incomplete');
    expect(text).toContain('warning: c/c-20260106T000000Z/ is invalid: metadata.json: broken');
    expect(text).toContain('lowest key version still needed: ns-c-etcd v1');
    expect(text).toContain('lowest key version still needed: ns-other v3');
    expect(text).not.toContain('SECRETWRAPPED');
  });

  it('says so when there are none', () => {
    expect(renderInventory('s3://b/c/', { backups: [], incomplete: [], invalid: [] })).toBe('no backups in s3://b/c/\n');
  });

  it('JSON never carries the wrapped key', () => {
    expect(JSON.stringify(backups.map(publicBackup))).not.toContain('SECRETWRAPPED');
    expect(lowestVersions(backups)).toEqual({ 'ns-c-etcd': 1, 'ns-other': 3 });
  });
});

describe('backups rewrap output', () => {
  it('one line per outcome and a summary', () => {
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 1, to: 3, status: 'rewrapped' })).toBe('rewrapped     k/  v1 -> v3\n');
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 3, status: 'current' })).toBe('current       k/  v3\n');
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 1, status: 'failed', error: 'denied' })).toBe('FAILED        k/: denied\n');
    const result = { outcomes: [{ key: 'a/', transitKey: 't', from: 1, to: 3, status: 'rewrapped' as const }, { key: 'b/', transitKey: 't', from: 3, status: 'current' as const }], latestVersion: { t: 3 }, failed: 0 };
    expect(summaryLine(result, 't', false)).toBe('2 backups of transit key t (latest v3): 1 rewrapped, 1 current, 0 failed\n');
  });
});
