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
    {
      key: K1,
      kind: 'envelope',
      schemaVersion: 2,
      cluster: 'c1',
      createdAt: new Date('2026-01-01T00:00:00Z'),
      transitKey: 't',
      transitKeyVersion: 1,
    },
    {
      key: K2,
      kind: 'envelope',
      schemaVersion: 2,
      cluster: 'c1',
      createdAt: new Date('2026-01-02T00:00:00Z'),
      transitKey: 't',
      transitKeyVersion: 2,
    },
    // Planted by a bucket writer: claims the far future, was stored before K2.
    {
      key: 'c1/c1-99991231T235959Z.db',
      kind: 'plaintext',
      cluster: 'c1',
      createdAt: new Date('9999-12-31T23:59:59Z'),
      storedAt: new Date('2026-01-01T12:00:00Z'),
    },
    {
      key: 'c1/c1-99991230T000000Z/',
      kind: 'envelope',
      schemaVersion: 2,
      cluster: 'c1',
      createdAt: new Date('9999-12-30T00:00:00Z'),
      storedAt: new Date('2026-01-01T12:00:00Z'),
      transitKey: 't',
      transitKeyVersion: 1,
    },
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
    [
      PLAIN,
      {
        ok: false,
        code: 1,
        message: expect.stringMatching(/plaintext snapshot: nothing authenticates it.*--confirm-unauthenticated/),
      },
    ],
    ['nonsense', { ok: false, code: 2, message: expect.stringContaining('is not a backup key') }],
    [
      'c2/c2-20260101T000000Z/',
      { ok: false, code: 1, message: expect.stringContaining('belongs to cluster c2, not c1') },
    ],
    ['c1/c1-20260103T000000Z/', { ok: false, code: 1, message: expect.stringContaining('incomplete') }],
    ['c1/c1-20260104T000000Z/', { ok: false, code: 1, message: expect.stringContaining('metadata.json: bad') }],
    ['c1/c1-20270101T000000Z/', { ok: false, code: 1, message: expect.stringContaining('does not exist') }],
  ])('%j', (requested, expected) => expect(chooseBackup(requested, 'c1', 'bkt', inventory)).toEqual(expected));

  it('a named plaintext file with the confirmation', () => {
    expect(chooseBackup(PLAIN, 'c1', 'bkt', inventory, { confirmUnauthenticated: true })).toEqual({
      ok: true,
      key: PLAIN,
    });
  });

  it('latest is never a plaintext file, and a claim is capped by when the server stored it', () => {
    expect(
      chooseBackup('latest', 'c1', 'bkt', {
        ...inventory,
        backups: inventory.backups.filter((b) => b.kind === 'plaintext'),
      }),
    ).toMatchObject({ ok: false, code: 1, message: expect.stringContaining('no complete envelope backup') });
  });

  it('latest with no backups is a refusal', () => {
    expect(chooseBackup('latest', 'c1', 'bkt', { backups: [], incomplete: [], invalid: [] })).toMatchObject({
      ok: false,
      code: 1,
    });
  });
});

/** A KdcCluster as k8-manager leaves it: the request, its record in status, the annotation showing it. */
const cluster = (from?: string, state?: string, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: {
    annotations: {
      ...(from ? { 'kube-dc.com/restore-from': from } : {}),
      ...(state ? { 'kube-dc.com/restore-state': state } : {}),
    },
  },
  status: { ...(from && state ? { restore: { key: from, state } } : {}), ...extra },
});

describe('restoreBlocker', () => {
  it.each([
    ['nothing', { metadata: {} }, null],
    ['a finished run', cluster(K1, 'Succeeded'), null],
    ['a failed run', cluster(K1, 'Failed'), null],
    ['a state shown without a request', { metadata: { annotations: { 'kube-dc.com/restore-state': 'Failed' } } }, null],
    ['a running run', cluster(K1, 'RestoringSnapshot'), /already running.*RestoringSnapshot/],
    ['a run being validated', cluster(K1, 'Validating'), /already running/],
    ['a request not taken up yet', cluster(K1), /has not started/],
    [
      'a running run, whatever the tenant wrote into the annotation',
      { ...cluster(K1, 'Succeeded'), status: { restore: { key: K1, state: 'StoppingEtcd' } } },
      /already running.*StoppingEtcd/,
    ],
  ])('%s', (_, object, expected) => {
    const blocker = restoreBlocker(object, 'c1', 'ns');
    if (expected === null) expect(blocker).toBeNull();
    else expect(blocker).toMatch(expected);
  });
});

describe('restorePatch', () => {
  it('sets restore-from, guards the resourceVersion, and drops a finished state', () => {
    expect(restorePatch(K1, '42', { 'kube-dc.com/restore-state': 'Succeeded' })).toEqual({
      metadata: {
        resourceVersion: '42',
        annotations: { 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-state': null },
      },
    });
    expect(restorePatch(K1, undefined, {})).toEqual({ metadata: { annotations: { 'kube-dc.com/restore-from': K1 } } });
  });
  it('confirms a plaintext file for its key only, and drops an old confirmation', () => {
    expect(restorePatch(PLAIN, undefined, {}, true)).toEqual({
      metadata: {
        annotations: { 'kube-dc.com/restore-from': PLAIN, 'kube-dc.com/restore-unauthenticated-confirmed': PLAIN },
      },
    });
    expect(restorePatch(K1, undefined, { 'kube-dc.com/restore-unauthenticated-confirmed': PLAIN })).toEqual({
      metadata: {
        annotations: { 'kube-dc.com/restore-from': K1, 'kube-dc.com/restore-unauthenticated-confirmed': null },
      },
    });
  });
});

describe('waitForRestore', () => {
  const fakeContext = () => {
    let now = 0;
    let out = '';
    let err = '';
    return {
      ctx: {
        env: {},
        io: { out: (t: string) => (out += t), err: (t: string) => (err += t) },
        now: () => new Date(now),
        sleep: async (ms: number) => void (now += ms),
      },
      output: () => ({ out, err }),
    };
  };
  const object = (state?: string, status?: Record<string, unknown>): KubeObject => cluster(K1, state, status);

  it('prints each state change once and ends at Succeeded', async () => {
    const states = [undefined, 'Validating', 'Validating', 'StoppingEtcd', 'Succeeded'];
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(
      ctx,
      async () => object(states.shift(), { latestRestoreKey: K1 }),
      'c1',
      'ns',
      60,
    );
    expect(code).toBe(0);
    expect(output().out.match(/restore-state: \S+/g)).toEqual([
      'restore-state: (not',
      'restore-state: Validating',
      'restore-state: StoppingEtcd',
      'restore-state: Succeeded',
    ]);
    expect(output().out).toContain(`restore succeeded: ${K1}`);
  });

  it('on a terminal, draws the states as one bar redrawn in place, then the result on its own line', async () => {
    const states = ['Validating', 'StoppingEtcd', 'Succeeded'];
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(
      { ...ctx, io: { ...ctx.io, tty: true } },
      async () => object(states.shift(), { latestRestoreKey: K1 }),
      'c1',
      'ns',
      60,
    );
    expect(code).toBe(0);
    const lines = output().out.split('\r\x1b[2K').filter(Boolean);
    expect(lines.map((l) => / (\d+)%  .*restore-state: (\S+)/.exec(l)?.slice(1))).toEqual([
      ['14', 'Validating'],
      ['42', 'StoppingEtcd'],
      ['100', 'Succeeded'],
    ]);
    expect(output().out.endsWith(`restore succeeded: ${K1}\n`)).toBe(true);
  });

  it('ends at Failed with the RestoreReady message', async () => {
    const { ctx, output } = fakeContext();
    const code = await waitForRestore(
      ctx,
      async () =>
        object('Failed', {
          conditions: [{ type: 'RestoreReady', status: 'False', reason: 'WrongKey', message: 'transit cannot unwrap' }],
        }),
      'c1',
      'ns',
      60,
    );
    expect(code).toBe(1);
    expect(output().err).toBe('restore failed: WrongKey: transit cannot unwrap\n');
  });

  it('shows the run the controller records, not what the annotation says', async () => {
    const { ctx, output } = fakeContext();
    const forged = { ...cluster(K1, 'Succeeded'), status: { restore: { key: K1, state: 'StoppingEtcd' } } };
    const code = await waitForRestore(ctx, async () => forged, 'c1', 'ns', 5);
    expect(code).toBe(1);
    expect(output().out).toContain('restore-state: StoppingEtcd');
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
    const code = await waitForRestore(
      ctx,
      async () => {
        if (calls++ === 0) throw new Error('connection reset');
        return object('Succeeded');
      },
      'c1',
      'ns',
      60,
    );
    expect(code).toBe(0);
    expect(output().err).toContain('warning: connection reset; retrying');
  });
});
