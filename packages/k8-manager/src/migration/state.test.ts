import { describe, expect, it } from 'vitest';
import { migrationState } from './reconcile.ts';

const coverage = {
  total: 10,
  current: 10,
  stale: 0,
  plaintext: 0,
  scannedAt: '2026-12-01T10:00:00Z',
  keyIds: ['kdc2.v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
};

describe('migrationState: what status says was proven', () => {
  it('reads back the last scan, the checkpoint and the last completion', () => {
    const record = {
      reason: 'enable' as const,
      startedAt: '2026-12-01T09:00:00Z',
      pass: 1,
      rewritten: 5,
      total: 10,
      resource: 'secrets' as const,
    };
    expect(
      migrationState({ encryption: { coverage, migration: record, lastRewrapCompleted: '2026-12-01T08:00:00Z' } }),
    ).toEqual({ coverage, record, lastCompletedAt: '2026-12-01T08:00:00Z' });
  });
  it('a restore after the scan put other rows back: the scan proves nothing any more', () => {
    expect(
      migrationState({ encryption: { coverage }, restore: { state: 'Succeeded', since: '2026-12-01T10:05:00Z' } }),
    ).toEqual({});
    expect(
      migrationState({ encryption: { coverage }, restore: { state: 'Succeeded', since: '2026-12-01T09:55:00Z' } }),
    ).toEqual({ coverage });
  });
  it('a scan from before key_ids were recorded is not used', () => {
    const { keyIds: _none, ...old } = coverage;
    expect(migrationState({ encryption: { coverage: old } })).toEqual({});
  });
});
