import { describe, expect, it } from 'vitest';
import { validateCluster, type KdcClusterStatus } from '@kdc/shared';
import { clusterStatus, type StatusInput } from './cluster-status.ts';

const now = new Date('2026-11-22T10:00:00Z');
const platform = { ok: true as const, config: { kmsPluginImage: 'kms:1', openBaoUrl: 'https://bao' } };
const ownKey = {
  metadata: {
    name: 'c1-etcd',
    labels: { 'k8s.kube-dc.com/kdccluster': 'c1', 'security.kube-dc.com/managed-by': 'kdccluster' },
  },
  spec: { purpose: 'etcd', rotation: { enabled: false } },
};
const validation = (encrypted: boolean) =>
  validateCluster({
    namespace: 'ns',
    name: 'c1',
    spec: { version: 'v1.35.0', ...(encrypted ? { encryption: { etcd: { enabled: true } } } : {}) },
    annotations: {},
    platform,
    kmsKeys: [ownKey],
    otherClusters: [],
    attached: false,
    now,
  });
const base = (encrypted = true): StatusInput => ({
  generation: 4,
  previous: undefined,
  validation: validation(encrypted),
  outcome: { kind: 'done' },
  tenant: { controlPlaneReady: true, kmsProvidersHealthy: true, sidecarReady: true },
  now,
});

const scheduled = {
  condition: { type: 'BackupReady', status: 'True' as const, reason: 'Scheduled', message: 'no backup yet' },
  fields: { backupBucket: 'ns-managed-k8s-backups', backupDestinationPath: 's3://ns-managed-k8s-backups/c1/' },
};
const restoring = {
  condition: { type: 'RestoreReady', status: 'False' as const, reason: 'RestoreInProgress', message: 'StoppingEtcd' },
  fields: { restore: { key: 'c1/c1-1/', state: 'StoppingEtcd' as const, since: '2026-11-22T09:59:00Z' } },
};
const restored = {
  condition: { type: 'RestoreReady', status: 'True' as const, reason: 'Succeeded', message: 'complete' },
  fields: {
    latestRestoreKey: 'c1/c1-1/',
    latestRestoreTime: '2026-11-22T10:00:00Z',
    restore: { key: 'c1/c1-1/', state: 'Succeeded' as const, since: '2026-11-22T10:00:00Z' },
  },
};
const types = (s: KdcClusterStatus) => (s.conditions ?? []).map((c) => c.type);

describe('clusterStatus: the backup and restore parts', () => {
  it.each<[string, Partial<StatusInput>, Partial<KdcClusterStatus>, string[], string[]]>([
    [
      'neither ran: no backup or restore field or condition',
      {},
      { phase: 'Ready' },
      [],
      ['BackupReady', 'RestoreReady'],
    ],
    [
      'the backup half: its condition and its fields',
      { backup: scheduled },
      { phase: 'Ready', ...scheduled.fields },
      ['BackupReady'],
      ['RestoreReady'],
    ],
    [
      'a running restore: its record',
      { restore: restoring },
      { phase: 'Ready', ...restoring.fields },
      ['RestoreReady'],
      ['BackupReady'],
    ],
    [
      'a restore that was never requested adds no condition',
      { restore: { fields: {} } },
      { phase: 'Ready' },
      [],
      ['RestoreReady'],
    ],
    [
      'both, backup first',
      { backup: scheduled, restore: restored },
      { phase: 'Ready', ...scheduled.fields, ...restored.fields },
      ['BackupReady', 'RestoreReady'],
      [],
    ],
    [
      'an unencrypted cluster is restored too',
      { validation: validation(false), restore: restored },
      { phase: 'Unencrypted', ...restored.fields },
      ['RestoreReady'],
      ['BackupReady'],
    ],
  ])('%s', (_, parts, fields, present, absent) => {
    const status = clusterStatus({ ...base(), ...parts });
    expect(status).toMatchObject(fields);
    for (const type of present)
      expect(status.conditions!.find((c) => c.type === type)).toMatchObject({
        observedGeneration: 4,
        lastTransitionTime: '2026-11-22T10:00:00Z',
      });
    for (const type of absent) expect(types(status)).not.toContain(type);
    expect(types(status).filter((t) => present.includes(t))).toEqual(present);
    if (!parts.backup && !parts.restore?.condition)
      expect(status).toEqual(clusterStatus({ ...base(), ...parts, backup: undefined, restore: undefined }));
  });

  it('keeps the order and transition time of a condition that did not change', () => {
    const first = clusterStatus({ ...base(), backup: scheduled, restore: restoring });
    const later = new Date('2026-11-22T11:00:00Z');
    const second = clusterStatus({ ...base(), previous: first, now: later, backup: scheduled, restore: restored });
    expect(types(second)).toEqual(types(first));
    expect(second.conditions!.find((c) => c.type === 'BackupReady')!.lastTransitionTime).toBe('2026-11-22T10:00:00Z');
    expect(second.conditions!.find((c) => c.type === 'RestoreReady')).toMatchObject({
      status: 'True',
      lastTransitionTime: '2026-11-22T11:00:00Z',
    });
  });
});
