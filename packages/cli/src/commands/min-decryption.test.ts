import { describe, expect, it } from 'vitest';
import { emptyCounts, type EtcdRowCounts } from '../clients/etcd-rows.ts';
import {
  minDecryptionDecision,
  renderInventory,
  type ClusterInventory,
  type DecisionInput,
  type KeyState,
} from './min-decryption.ts';

const key: KeyState = { transitKey: 'ns-k', latestVersion: 3, minDecryptionVersion: 1 };
const rows = (byVersion: Record<number, number>, extra: Partial<EtcdRowCounts> = {}): EtcdRowCounts => ({
  ...emptyCounts(),
  rows: Object.values(byVersion).reduce((a, b) => a + b, 0),
  byVersion,
  ...extra,
});
const backups = (versions: Record<number, number>) => ({
  status: 'read' as const,
  destination: 's3://b/c/',
  total: 3,
  ofKey: 3,
  versions,
});
const etcd = (byVersion: Record<number, number>, extra: Partial<EtcdRowCounts> = {}) => ({
  status: 'read' as const,
  prefix: '/ns_c-cp/',
  counts: rows(byVersion, extra),
});
const skipped = { status: 'skipped' as const, reason: 'x' };
const cluster = (c: Partial<ClusterInventory> = {}): ClusterInventory => ({
  cluster: 'c',
  backups: backups({ 3: 3 }),
  etcd: etcd({ 3: 10 }),
  ...c,
});
const input = (target: number, clusters: ClusterInventory[], k: KeyState = key): DecisionInput => ({
  namespace: 'ns',
  kmsKey: 'k',
  target,
  key: k,
  clusters,
});

describe('minDecryptionDecision', () => {
  it.each([
    ['everything at v3', 3, [cluster()], 'advance'],
    ['no clusters at all', 3, [], 'advance'],
    ['target beyond latest', 4, [cluster()], 'refuse'],
    ['target equals current min', 1, [cluster()], 'nothing'],
    ['a backup at v2', 3, [cluster({ backups: backups({ 2: 1, 3: 2 }) })], 'refuse'],
    ['a backup at v2, target 2', 2, [cluster({ backups: backups({ 2: 1, 3: 2 }) })], 'advance'],
    ['an etcd row at v2', 3, [cluster({ etcd: etcd({ 2: 1, 3: 9 }) })], 'refuse'],
    [
      'an unreadable row of ours',
      3,
      [cluster({ etcd: etcd({ 3: 9 }, { unreadable: 1, unreadableExamples: ['/x: y'] }) })],
      'refuse',
    ],
    [
      'plaintext and other providers only',
      3,
      [cluster({ etcd: etcd({}, { plaintext: 5, otherProviders: { 'aescbc:v1:k': 2 } }) })],
      'advance',
    ],
    [
      'etcd not readable while encryption is on',
      3,
      [cluster({ etcd: { status: 'unprovable', reason: 'pass --etcd-endpoint' } })],
      'refuse',
    ],
    ['etcd skipped (other key)', 3, [cluster({ etcd: skipped })], 'advance'],
    [
      'backups of a cluster using the key unreadable',
      3,
      [cluster({ backups: { status: 'error', error: 'S3 down', required: true } })],
      'refuse',
    ],
    [
      'backups of an unrelated cluster unreadable',
      3,
      [cluster({ backups: { status: 'error', error: 'S3 down', required: false } })],
      'advance',
    ],
    ['backups disabled', 3, [cluster({ backups: skipped })], 'advance'],
  ] as const)('%s -> %s', (_name, target, clusters, action) => {
    expect(minDecryptionDecision(input(target, [...clusters])).action).toBe(action);
  });

  it('names what is below the target and what to run', () => {
    const decision = minDecryptionDecision(
      input(3, [cluster({ backups: backups({ 1: 1, 2: 2, 3: 1 }), etcd: etcd({ 2: 4, 3: 1 }) })]),
    );
    expect(decision.action).toBe('refuse');
    if (decision.action !== 'refuse') return;
    expect(decision.reasons).toEqual([
      'backups of cluster c still need ns-k v1 (1 backup), v2 (2 backups): run "kubectl kdc backups rewrap c -n ns"',
      'etcd rows of cluster c under /ns_c-cp/ still use v2 (4 rows): run "kubectl kdc rewrap-etcd c -n ns"',
    ]);
  });

  it('a target below the current minimum is nothing to do, never a move backwards', () => {
    expect(
      minDecryptionDecision(input(2, [cluster({ backups: backups({ 1: 1 }) })], { ...key, minDecryptionVersion: 3 })),
    ).toMatchObject({ action: 'nothing', code: 0 });
  });

  it('says why a target is out of range', () => {
    expect(minDecryptionDecision(input(4, []))).toMatchObject({
      code: 1,
      reasons: [expect.stringContaining('latest version is 3')],
    });
    expect(minDecryptionDecision(input(1, []))).toMatchObject({
      code: 0,
      message: expect.stringContaining('already 1'),
    });
  });

  it('warns about what it could not look at without refusing', () => {
    const decision = minDecryptionDecision(
      input(3, [cluster({ backups: { status: 'error', error: 'no Secret', required: false } })]),
    );
    expect(decision).toMatchObject({ action: 'advance', warnings: [expect.stringContaining('no Secret')] });
  });
});

describe('renderInventory', () => {
  it('shows versions per cluster, never data', () => {
    const text = renderInventory(
      input(3, [
        cluster({ backups: backups({ 1: 1, 3: 2 }), etcd: etcd({ 2: 4 }, { plaintext: 7 }) }),
        cluster({ cluster: 'd', etcd: { status: 'unprovable', reason: 'r' } }),
      ]),
    );
    expect(text).toContain('latest_version 3, min_decryption_version 1, target 3');
    expect(text).toMatch(/c\s+3\s+3\s+v1:1 v3:2/);
    expect(text).toMatch(/c\s+\/ns_c-cp\/\s+4\s+v2:4\s+7\s+0\s+0/);
    expect(text).toMatch(/d\s+-\s+\?\s+not read/);
  });
});
