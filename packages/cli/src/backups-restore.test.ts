import { describe, expect, it } from 'vitest';
import type { Inventory } from '@kdc/backup-envelope';
import type { KubeObject } from '@kdc/shared';
import { chooseBackup, normaliseBackupKey, restoreBlocker, restorePatch, waitForRestore } from './backups-restore.ts';

const K1 = 'c1/c1-20260101T000000Z/';
const K2 = 'c1/c1-20260102T000000Z/';
const PLAIN = 'c1/c1-20251231T000000Z.db';
const inventory: Inventory = {
  backups: [
    { key: PLAIN, kind: 'plaintext', cluster: 'c1', createdAt: new Date('2025-12-31T00:00:00Z') },
    { key: K1, kind: 'envelope', cluster: 'c1', createdAt: new Date('2026-01-01T00:00:00Z'), transitKey: 't', transitKeyVersion: 1 },
    { key: K2, kind: 'envelope', cluster: 'c1', createdAt: new Date('2026-01-02T00:00:00Z'), transitKey: 't', transitKeyVersion: 2 },
  ],
  incomplete: ['c1/c1-20260103T000000Z/'],
  invalid: [{ key: 'c1/c1-20260104T000000Z/', error: 'metadata.json: bad' }],
};

describe('normaliseBackupKey', () => {
  it.each([
    [K1, K1],
    ['c1/c1-20260101T000000Z', K1],
    [`s3://bkt/${K1}`, K1],
    [`/${K1}`, K1],
    [PLAIN, PLAIN],
  ])('%j -> %j', (input, key) => expect(normaliseBackupKey(input, 'bkt')).toBe(key));
});

describe('chooseBackup', () => {
  it.each([
    ['latest', { ok: true, key: K2 }],
    [K1, { ok: true, key: K1 }],
    ['c1/c1-20260101T000000Z', { ok: true, key: K1 }],
    [PLAIN, { ok: true, key: PLAIN }],
    ['nonsense', { ok: false, code: 2, message: expect.stringContaining('is not a backup key') }],
    ['c2/c2-20260101T000000Z/', { ok: false, code: 1, message: expect.stringContaining('belongs to cluster c2, not c1') }],
    ['c1/c1-20260103T000000Z/', { ok: false, code: 1, message: expect.stringContaining('incomplete') }],
    ['c1/c1-20260104T000000Z/', { ok: false, code: 1, message: expect.stringContaining('metadata.json: bad') }],
    ['c1/c1-20270101T000000Z/', { ok: false, code: 1, message: expect.stringContaining('does not exist') }],
  ])('%j', (requested, expected) => expect(chooseBackup(requested, 'c1', 'bkt', inventory)).toEqual(expected));

  it('latest with no backups is a refusal', () => {
    expect(chooseBackup('latest', 'c1', 'bkt', { backups: [], incomplete: [], invalid: [] })).toMatchObject({ ok: false, code: 1 });
  });
});

describe('restoreBlocker', () => {
  it.each([
    [undefined, null],
    [{}, null],
    [{ 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': 'Succeeded' }, null],
    [{ 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': 'Failed' }, null],
    [{ 'kube-dc.com/restore-state': 'Failed' }, null],
    [{ 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': 'RestoringSnapshot' }, /already running.*RestoringSnapshot/],
    [{ 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': 'Validating' }, /already running/],
    [{ 'kube-dc.com/restore-from': K1 }, /has not started/],
  ])('%j', (annotations, expected) => {
    const blocker = restoreBlocker(annotations, 'c1', 'ns');
    if (expected === null) expect(blocker).toBeNull();
    else expect(blocker).toMatch(expected);
  });
});

describe('restorePatch', () => {
  it('sets restore-from, guards the resourceVersion, and drops a finished state', () => {
    expect(restorePatch(K1, '42', { 'kube-dc.com/restore-state': 'Succeeded' })).toEqual({ metadata: { resourceVersion: '42', annotations: { 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': null } } });
    expect(restorePatch(K1, undefined, {})).toEqual({ metadata: { annotations: { 'kube-dc.com/restore-from': K1 } } });
  });
});

describe('waitForRestore', () => {
  const fakeContext = () => {
    let now = 0;
    let out = '';
    let err = '';
    return {
      ctx: { env: {}, io: { out: (t: string) => (out += t), err: (t: string) => (err += t) }, now: () => new Date(now), sleep: async (ms: number) => void (now += ms) },
      output: () => ({ out, err }),
    };
  };
  const object = (state?: string, status?: Record<string, unknown>): KubeObject => ({ metadata: { annotations: state ? { 'kube-dc.com/restore-state': state } : {} }, ...(status ? { status } : {}) });

  it('prints each state change once and ends at Succeeded', async () => {
    const states = [undefined, 'Validating', 'Validating', 'StoppingEtcd', 'Succeeded'];
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(ctx, async () => object(states.shift(), { latestRestoreKey: K1 }), 'c1', 'ns', 60);
    expect(code).toBe(0);
    expect(output().out.match(/restore-state: \S+/g)).toEqual(['restore-state: (not', 'restore-state: Validating', 'restore-state: StoppingEtcd', 'restore-state: Succeeded']);
    expect(output().out).toContain(`restore succeeded: ${K1}`);
  });

  it('ends at Failed with the RestoreReady message', async () => {
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(ctx, async () => object('Failed', { conditions: [{ type: 'RestoreReady', status: 'False', reason: 'WrongKey', message: 'transit cannot unwrap' }] }), 'c1', 'ns', 60);
    expect(code).toBe(1);
    expect(output().err).toBe('restore failed: WrongKey: transit cannot unwrap\n');
  });

  it('gives up after the timeout, saying the restore goes on', async () => {
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(ctx, async () => object('RestoringSnapshot'), 'c1', 'ns', 10);
    expect(code).toBe(1);
    expect(output().err).toContain('gave up waiting after 10s; restore-state is RestoringSnapshot');
  });

  it('rides out a transient API error', async () => {
    const { ctx, output } = fakeContext();
    let calls = 0;
    const code = await waitForRestore(ctx, async () => {
      if (calls++ === 0) throw new Error('connection reset');
      return object('Succeeded');
    }, 'c1', 'ns', 60);
    expect(code).toBe(0);
    expect(output().err).toContain('warning: connection reset; retrying');
  });
});
