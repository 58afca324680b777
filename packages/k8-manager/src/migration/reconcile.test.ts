import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EventRecorder, KdcClusterSpec, Logger, TenantControlPlane } from '@kdc/shared';
import { migrationMetrics, migrationReconciler, type MigrationInput, type RowStore } from './reconcile.ts';

// The driver around planMigration, with the store faked: what it records when a migration ends
// and when etcd has compacted the migration's old revisions.

const K = 'kdc2.v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const NOW = new Date('2026-12-01T10:10:00Z');
const events: string[] = [];
const recorder = {
  record: async (_o: unknown, _t: string, reason: string) => void events.push(reason),
} as unknown as EventRecorder;
const logger = { warn: () => undefined, info: () => undefined } as unknown as Logger;

function driver(rows: Partial<RowStore>) {
  return migrationReconciler({
    rows: {
      scan: async () => ({ total: 0, current: 0, stale: 0, plaintext: 0 }),
      compactedBefore: async () => false,
      rowIs: async () => true,
      ...rows,
    },
    recorder,
    logger,
    metrics: migrationMetrics(new Registry()),
    pageSize: 10,
    ratePerSecond: 100,
    now: () => NOW,
  });
}

const input = (more: Partial<MigrationInput>): MigrationInput => ({
  cluster: { metadata: { name: 'c1', namespace: 'ns' } },
  namespace: 'ns',
  spec: {
    version: 'v1.35.0',
    encryption: { etcd: { enabled: true, resources: ['secrets'], rewrapAfterRotation: true } },
  } as KdcClusterSpec,
  tcp: {} as TenantControlPlane,
  providers: { encrypt: ['secrets'], decrypt: [], retained: [], shared: [] },
  configHash: 'H',
  rollout: { ready: true, keyIds: [K] },
  ...more,
});
const clean = {
  total: 5,
  current: 5,
  stale: 0,
  plaintext: 0,
  scannedAt: '2026-12-01T10:05:00Z',
  keyIds: [K],
  configHash: 'H',
  revision: 812,
};

describe('migration driver: the old revisions a migration leaves in etcd', () => {
  it('a finished migration records the revision etcd must compact past', async () => {
    const record = {
      reason: 'enable' as const,
      startedAt: '2026-12-01T10:00:00Z',
      pass: 1,
      rewritten: 5,
      total: 5,
      passEndedAt: '2026-12-01T10:04:00Z',
    };
    const out = await driver({})(input({ record, coverage: clean }));
    expect(out.step.kind).toBe('finish');
    expect(out.history).toEqual({ untilRevision: 812, migrationEnded: '2026-12-01T10:10:00Z' });
    expect(out.record).toBeUndefined();
    expect(events).toContain('MigrationCompleted');
  });
  it('a finished decrypt leaves only encrypted rows behind: no history to scrub, no rewrap date', async () => {
    const record = {
      reason: 'decrypt' as const,
      startedAt: '2026-12-01T10:00:00Z',
      pass: 1,
      rewritten: 5,
      total: 5,
      passEndedAt: '2026-12-01T10:04:00Z',
    };
    const plain = {
      ...clean,
      current: 0,
      plaintext: 5,
      byResource: { secrets: { total: 5, current: 0, stale: 0, plaintext: 5 } },
    };
    const out = await driver({})(
      input({
        record,
        coverage: plain,
        providers: { encrypt: [], decrypt: ['secrets'], retained: [], shared: [] },
        lastCompletedAt: '2026-11-30T00:00:00Z',
      }),
    );
    expect(out.step.kind).toBe('finish');
    expect(out.history).toBeUndefined();
    expect(out.lastCompletedAt).toBe('2026-11-30T00:00:00Z');
    expect(out.provenPlaintext).toEqual(['secrets']);
  });
  it('idle: kept while etcd still holds them, dropped once it compacted past the revision', async () => {
    const history = { untilRevision: 812, migrationEnded: '2026-12-01T10:06:00Z' };
    const asked: number[] = [];
    const kept = await driver({ compactedBefore: async ({ revision }) => (asked.push(revision), false) })(
      input({ coverage: clean, history }),
    );
    expect(kept).toMatchObject({ step: { kind: 'idle' }, history });
    const gone = await driver({ compactedBefore: async () => true })(input({ coverage: clean, history }));
    expect(gone.step.kind).toBe('idle');
    expect(gone.history).toBeUndefined();
    expect(asked).toEqual([812]);
  });
});
