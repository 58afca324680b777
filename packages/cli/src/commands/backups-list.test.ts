import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '@kdc/backup-envelope';
import {
  inventoryDocument,
  lowestVersions,
  migrationHistory,
  preMigration,
  preMigrationSummary,
  publicBackup,
  renderInventory,
  type MigrationHistory,
} from './backups-list.ts';
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
  const backups = [
    backup('c/c-20260102T030405Z/', 1),
    backup('c/c-20260103T030405Z/', 2),
    backup('c/c-20260104T030405Z/', 3, 'ns-other'),
    {
      key: 'c/c-20260101T000000Z.db',
      kind: 'plaintext' as const,
      cluster: 'c',
      createdAt: new Date('2026-01-01T00:00:00Z'),
      storedSize: 100,
    },
  ];

  it('renders the table, warnings and the lowest version per key', () => {
    const text = renderInventory('s3://b/c/', {
      backups,
      incomplete: ['c/c-20260105T000000Z/'],
      invalid: [{ key: 'c/c-20260106T000000Z/', error: 'metadata.json: broken' }],
    });
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
    expect(renderInventory('s3://b/c/', { backups: [], incomplete: [], invalid: [] })).toBe(
      'no backups in s3://b/c/\n',
    );
  });

  it('JSON never carries the wrapped key', () => {
    expect(JSON.stringify(backups.map(publicBackup))).not.toContain('SECRETWRAPPED');
    expect(lowestVersions(backups)).toEqual({ 'ns-c-etcd': 1, 'ns-other': 3 });
  });
});

describe('PRE-MIGRATION flag', () => {
  const at = (iso: string, storedAt?: string) => ({
    createdAt: new Date(iso),
    ...(storedAt ? { storedAt: new Date(storedAt) } : {}),
  });
  const completed: MigrationHistory = { lastCompleted: new Date('2026-03-01T12:00:00Z') };
  const running = (reason: 'enable' | 'rewrap' | 'switch', extra: MigrationHistory = {}): MigrationHistory => ({
    ...extra,
    running: { reason, startedAt: new Date('2026-03-05T08:00:00Z') },
  });

  it.each([
    ['no migration ever', {}, at('2026-01-01T00:00:00Z'), undefined],
    ['before the completed one', completed, at('2026-02-28T02:00:00Z'), 'completed'],
    [
      'within the second it completed (stamped before the snapshot was read)',
      completed,
      at('2026-03-01T12:00:00.900Z'),
      'completed',
    ],
    ['after the completed one', completed, at('2026-03-01T12:00:01Z'), undefined],
    [
      'a claimed time after it, stored before it',
      completed,
      at('2026-03-02T00:00:00Z', '2026-03-01T11:00:00Z'),
      'completed',
    ],
    ['while one runs', running('rewrap', completed), at('2026-03-05T09:00:00Z'), 'running'],
    ['before one that runs', running('enable'), at('2026-03-04T00:00:00Z'), 'running'],
    [
      'before one that runs, after an earlier completed one',
      running('rewrap', completed),
      at('2026-03-03T00:00:00Z'),
      'running',
    ],
  ] as const)('%s', (_name, history, backup, expected) => {
    expect(preMigration(backup, history)?.migration).toBe(expected);
    if (expected) expect(preMigration(backup, history)?.flag).toBe('PRE-MIGRATION');
  });

  it('notes say when, what the backup holds and where the scrub is', () => {
    expect(preMigration(at('2026-02-28T02:00:00Z'), completed)).toEqual({
      flag: 'PRE-MIGRATION',
      migration: 'completed',
      time: '2026-03-01T12:00:00Z',
      note: 'taken before the rows were re-written on 2026-03-01T12:00:00Z: it holds plaintext or rows under an older key_id; delete it once newer backups exist (docs/runbook.md#scrub-after-a-migration)',
    });
    expect(preMigration(at('2026-03-05T09:00:00Z'), running('switch'))?.note).toMatch(
      /^taken while the rows were being re-written \(switch, .*: it holds rows under the key the switch leaves;/,
    );
    expect(preMigration(at('2026-03-05T09:00:00Z'), running('enable'))?.note).toBe(
      'taken while the rows were being re-written (enable, running since 2026-03-05T08:00:00Z): it holds rows in plaintext; delete it once a backup taken after the re-write completed exists (docs/runbook.md#scrub-after-a-migration)',
    );
    expect(preMigration(at('2026-03-04T00:00:00Z'), running('rewrap'))?.note).toMatch(
      /^taken before the rows were re-written \(rewrap, running since 2026-03-05T08:00:00Z\): it holds rows under an older key_id;/,
    );
  });

  it.each([
    ['a cluster without status', undefined, {}],
    ['encryption status without any migration', { encryption: { resolvedKeyRef: 'k' } }, {}],
    [
      'a completed migration',
      { encryption: { lastRewrapCompleted: '2026-03-01T12:00:00Z' } },
      { lastCompleted: new Date('2026-03-01T12:00:00Z') },
    ],
    [
      'a running migration',
      {
        encryption: {
          lastRewrapCompleted: '2026-03-01T12:00:00Z',
          migration: { reason: 'rewrap', startedAt: '2026-03-05T08:00:00Z', pass: 1, rewritten: 0, total: 9 },
        },
      },
      running('rewrap', completed),
    ],
    [
      'unreadable times are left out',
      {
        encryption: {
          lastRewrapCompleted: 'soon',
          migration: { reason: 'enable', startedAt: 'never', pass: 1, rewritten: 0, total: 0 },
        },
      },
      {},
    ],
  ] as const)('reads the history from %s', (_name, status, expected) => {
    expect(migrationHistory(status as Parameters<typeof migrationHistory>[0])).toEqual(expected);
  });

  const envelope = (key: string, iso: string): BackupInfo => ({
    ...backup(key, 1),
    schemaVersion: 2,
    createdAt: new Date(iso),
  });
  const inventory = {
    backups: [
      envelope('c/c-20260228T020000Z/', '2026-02-28T02:00:00Z'),
      envelope('c/c-20260302T020000Z/', '2026-03-02T02:00:00Z'),
    ],
    incomplete: [],
    invalid: [],
  };

  it('the table gets a MIGRATION column and one note only when a backup is flagged', () => {
    const text = renderInventory('s3://b/c/', inventory, completed);
    expect(text.split('\n')[0]).toMatch(/^KEY\s+CREATED\s+TRANSIT KEY\s+VERSION\s+SIZE\s+MIGRATION$/);
    expect(text).toMatch(/c\/c-20260228T020000Z\/\s+.*\s+5\.0 MiB\s+PRE-MIGRATION\n/);
    expect(text).toMatch(/c\/c-20260302T020000Z\/\s+.*\s+5\.0 MiB\s+-\n/);
    expect(text).toContain(
      'note: the backup marked PRE-MIGRATION was taken before the rows were re-written on 2026-03-01T12:00:00Z and holds plaintext or rows under an older key_id; c/c-20260302T020000Z/ is newer: delete it (docs/runbook.md#scrub-after-a-migration)\n',
    );
    expect(renderInventory('s3://b/c/', inventory, {}).split('\n')[0]).toMatch(
      /^KEY\s+CREATED\s+TRANSIT KEY\s+VERSION\s+SIZE$/,
    );
    expect(renderInventory('s3://b/c/', inventory, {})).not.toContain('note:');
    expect(renderInventory('s3://b/c/', inventory, { lastCompleted: new Date('2026-01-01T00:00:00Z') })).not.toContain(
      'MIGRATION',
    );
  });

  it('the note says when no newer backup exists yet, and while a migration runs', () => {
    expect(preMigrationSummary(inventory.backups, { lastCompleted: new Date('2026-03-03T00:00:00Z') })).toBe(
      'note: the 2 backups marked PRE-MIGRATION were taken before the rows were re-written on 2026-03-03T00:00:00Z and hold plaintext or rows under an older key_id; delete them once a newer backup exists (docs/runbook.md#scrub-after-a-migration)\n',
    );
    expect(preMigrationSummary(inventory.backups, running('rewrap'))).toBe(
      'note: rows are being re-written (rewrap, since 2026-03-05T08:00:00Z): the 2 backups marked PRE-MIGRATION hold rows under an older key_id; delete them once the re-write completed and a newer backup exists (docs/runbook.md#scrub-after-a-migration)\n',
    );
    expect(preMigrationSummary(inventory.backups, {})).toBe('');
  });

  it('JSON carries the history and a preMigration field on flagged backups only', () => {
    const doc = inventoryDocument(
      { cluster: 'c', namespace: 'ns', bucket: 'b', destinationPath: 's3://b/c/' },
      inventory,
      completed,
    );
    expect(doc.migration).toEqual({ lastCompleted: '2026-03-01T12:00:00Z' });
    expect(doc.backups.map((b) => ('preMigration' in b ? b.preMigration?.migration : undefined))).toEqual([
      'completed',
      undefined,
    ]);
    expect(
      inventoryDocument({ cluster: 'c', namespace: 'ns', bucket: 'b', destinationPath: 's3://b/c/' }, inventory)
        .migration,
    ).toEqual({});
    expect(JSON.stringify(doc)).not.toContain('SECRETWRAPPED');
  });
});

describe('backups rewrap output', () => {
  it('one line per outcome and a summary', () => {
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 1, to: 3, status: 'rewrapped' })).toBe(
      'rewrapped     k/  v1 -> v3\n',
    );
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 3, status: 'current' })).toBe('current       k/  v3\n');
    expect(outcomeLine({ key: 'k/', transitKey: 't', from: 1, status: 'failed', error: 'denied' })).toBe(
      'FAILED        k/: denied\n',
    );
    const result = {
      outcomes: [
        { key: 'a/', transitKey: 't', from: 1, to: 3, status: 'rewrapped' as const },
        { key: 'b/', transitKey: 't', from: 3, status: 'current' as const },
      ],
      latestVersion: { t: 3 },
      failed: 0,
    };
    expect(summaryLine(result, 't', false)).toBe(
      '2 backups of transit key t (latest v3): 1 rewrapped, 1 current, 0 failed\n',
    );
  });
});
