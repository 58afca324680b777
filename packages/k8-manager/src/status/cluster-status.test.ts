import { describe, expect, it } from 'vitest';
import { validateCluster } from '@kdc/shared';
import type { MigrationOutcome } from '../migration/reconcile.ts';
import { clusterStatus } from './cluster-status.ts';

const platform = { ok: true as const, config: { kmsPluginImage: 'kms:1', openBaoUrl: 'https://bao' } };
const spec = (etcd: object | null = {}) => ({
  version: 'v1.35.0',
  ...(etcd ? { encryption: { etcd: { enabled: true, ...etcd } } } : {}),
});
const ownKey = {
  metadata: {
    name: 'c1-etcd',
    labels: { 'k8s.kube-dc.com/kdccluster': 'c1', 'security.kube-dc.com/managed-by': 'kdccluster' },
  },
  spec: { purpose: 'etcd', rotation: { enabled: false } },
};

/** The spec as the reconciler validates it (only the validation is read here). */
function observed(rawSpec: object) {
  return {
    validation: validateCluster({
      namespace: 'ns',
      name: 'c1',
      spec: rawSpec,
      annotations: {},
      platform,
      kmsKeys: [ownKey],
      otherClusters: [],
      attached: false,
      now: new Date(),
    }),
  };
}

describe('clusterStatus', () => {
  const now = new Date('2026-11-22T10:00:00Z');
  it('reports an invalid spec without touching the rest', () => {
    const o = observed(spec({ keyRef: 'missing' }));
    const status = clusterStatus({
      generation: 3,
      previous: { phase: 'Ready', encryption: { resolvedKeyRef: 'c1-etcd' } },
      validation: o.validation,
      outcome: { kind: 'invalid' },
      now,
    });
    expect(status.phase).toBe('Invalid');
    expect(status.encryption).toEqual({ resolvedKeyRef: 'c1-etcd' });
    expect(status.conditions!.find((c) => c.type === 'EncryptionConfigError')).toMatchObject({
      status: 'True',
      reason: 'KeyRefNotFound',
      observedGeneration: 3,
    });
  });
  it('is Ready once the tenant reports KMS healthy, and mirrors the key', () => {
    const o = observed(spec());
    const status = clusterStatus({
      generation: 1,
      previous: undefined,
      validation: o.validation,
      outcome: { kind: 'done' },
      now,
      etcdKey: {
        spec: { rotation: { enabled: true } },
        status: { currentVersion: 2, lastRotatedTime: 't1', nextRotationTime: 't2' },
      },
      tenant: { controlPlaneReady: true, kmsProvidersHealthy: true, sidecarReady: true, keyVersion: 2 },
    });
    expect(status).toMatchObject({
      phase: 'Ready',
      encryption: {
        resolvedKeyRef: 'c1-etcd',
        resolvedBackupKeyRef: 'c1-etcd',
        kmsPluginReady: true,
        currentKeyVersion: 2,
        kekRotation: { enabled: true, currentVersion: 2 },
      },
    });
    // Encrypted waits for a scan of the stored rows.
    expect(
      status
        .conditions!.filter((c) => c.status === 'True')
        .map((c) => c.type)
        .sort(),
    ).toEqual(['EncryptionAvailable', 'Ready']);
    expect(status.conditions!.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: 'False',
      reason: 'EncryptionInProgress',
    });
  });
  it.each<
    [string, Omit<MigrationOutcome, 'provenPlaintext' | 'settled'>, { status: string; reason: string; message: RegExp }]
  >([
    [
      'a clean scan',
      {
        step: { kind: 'idle' },
        coverage: { total: 20, current: 20, stale: 0, plaintext: 0, scannedAt: 't', keyIds: ['k'] },
      },
      { status: 'True', reason: 'EncryptionCompleted', message: /^All resources encrypted: secrets$/ },
    ],
    [
      'an enable migration',
      {
        step: { kind: 'rewrite', resource: 'secrets' },
        record: { reason: 'enable', startedAt: 't', pass: 1, rewritten: 5, total: 20 },
      },
      { status: 'False', reason: 'EncryptionInProgress', message: /5\/20 objects/ },
    ],
    [
      'a rewrap, second pass',
      {
        step: { kind: 'rewrite', resource: 'secrets' },
        record: { reason: 'rewrap', startedAt: 't', pass: 2, rewritten: 25, total: 20 },
      },
      { status: 'False', reason: 'RewrapInProgress', message: /25\/20 objects re-written \(pass 2\)/ },
    ],
    [
      'waiting for the replicas',
      {
        step: {
          kind: 'wait',
          message: '1 of 2 control-plane replicas run the current encryption config',
          retryMs: 5000,
        },
      },
      { status: 'False', reason: 'EncryptionInProgress', message: /1 of 2/ },
    ],
    [
      'a scan that failed',
      { step: { kind: 'scan', why: 'no scan yet' }, problem: 'the coverage scan failed: DataStore x cannot be read' },
      {
        status: 'False',
        reason: 'EncryptionInProgress',
        message: /counting the stored rows \(the coverage scan failed/,
      },
    ],
    [
      'a key switch moving the rows',
      {
        step: { kind: 'rewrite', resource: 'secrets' },
        record: { reason: 'switch', startedAt: 't', pass: 1, rewritten: 5, total: 20 },
      },
      {
        status: 'False',
        reason: 'RewrapInProgress',
        message: /^moving every row to the new key \(key switch\): 5\/20 objects/,
      },
    ],
    [
      'a decrypt pass',
      {
        step: { kind: 'rewrite', resource: 'secrets' },
        record: { reason: 'decrypt', startedAt: 't', pass: 1, rewritten: 5, total: 20 },
      },
      { status: 'False', reason: 'DecryptionInProgress', message: /^decrypting every .* 5\/20 objects/ },
    ],
    [
      'stale rows, automatic rewrap off',
      {
        step: { kind: 'idle', stale: 3 },
        coverage: { total: 20, current: 17, stale: 3, plaintext: 0, scannedAt: 't', keyIds: ['k'] },
      },
      { status: 'False', reason: 'EncryptionInProgress', message: /3 of 20 rows .* kubectl kdc rewrap-etcd/ },
    ],
  ])('Encrypted after %s', (_name, migration, condition) => {
    const o = observed(spec());
    const status = clusterStatus({
      generation: 1,
      previous: undefined,
      validation: o.validation,
      outcome: { kind: 'done' },
      now,
      migration: { provenPlaintext: [], settled: false, ...migration },
      tenant: { controlPlaneReady: true, kmsProvidersHealthy: true, sidecarReady: true },
    });
    expect(status.conditions!.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: condition.status,
      reason: condition.reason,
      message: expect.stringMatching(condition.message),
    });
    expect(status.encryption?.rewrapInProgress).toBe(
      migration.record?.reason === 'rewrap' || migration.record?.reason === 'switch',
    );
  });
  it('a rollout that leaves the config as it was (plugin image, OpenBao URL) keeps what the last scan proved', () => {
    const o = observed(spec());
    const previous = {
      conditions: [
        {
          type: 'Encrypted',
          status: 'True' as const,
          reason: 'EncryptionCompleted',
          message: 'All resources encrypted: secrets',
          lastTransitionTime: 't0',
        },
      ],
      encryption: {
        coverage: { total: 20, current: 20, stale: 0, plaintext: 0, scannedAt: 't', keyIds: ['k'], configHash: 'H1' },
      },
    };
    const rolling = (configHash: string) =>
      clusterStatus({
        generation: 1,
        previous,
        validation: o.validation,
        outcome: { kind: 'done' },
        now,
        configHash,
        tenant: {
          controlPlaneReady: true,
          kmsProvidersHealthy: true,
          sidecarReady: false,
          problem: 'kms-plugin not ready',
        },
      });
    expect(rolling('H1').conditions!.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: 'True',
      reason: 'EncryptionCompleted',
    });
    expect(rolling('H1').conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False' });
    // A new config needs a new proof.
    expect(rolling('H2').conditions!.find((c) => c.type === 'Encrypted')).toMatchObject({
      status: 'False',
      reason: 'EncryptionInProgress',
    });
  });
  it('is not Ready while the sidecar is not', () => {
    const o = observed(spec());
    const status = clusterStatus({
      generation: 1,
      previous: undefined,
      validation: o.validation,
      outcome: { kind: 'done' },
      now,
      tenant: {
        controlPlaneReady: true,
        kmsProvidersHealthy: true,
        sidecarReady: false,
        problem: 'kms-plugin not ready',
      },
    });
    expect(status.conditions!.find((c) => c.type === 'EncryptionAvailable')).toMatchObject({
      status: 'False',
      reason: 'KMSPluginNotReady',
      message: 'kms-plugin not ready',
    });
  });
  it('a generation bump waiting for the pre-flight is not a failure: the attached, healthy control plane stays Ready', () => {
    const o = observed(spec());
    const ready = clusterStatus({
      generation: 1,
      previous: undefined,
      validation: o.validation,
      outcome: { kind: 'done' },
      now,
      tenant: { controlPlaneReady: true, kmsProvidersHealthy: true, sidecarReady: true },
    });
    const waiting = {
      kind: 'waitForPreflight',
      failed: false,
      message: 'waiting for the KMS pre-flight of the OpenBao policy and role',
    } as const;
    const bumped = clusterStatus({
      generation: 2,
      previous: ready,
      validation: o.validation,
      outcome: waiting,
      attached: true,
      now,
    });
    expect(bumped.phase).toBe('Ready');
    expect(bumped.conditions!.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'EncryptionAvailable',
      observedGeneration: 2,
      message: expect.stringContaining('generation 2 is applied once the KMS pre-flight'),
    });
    expect(bumped.conditions!.find((c) => c.type === 'EncryptionAvailable')).toMatchObject({
      status: 'True',
      reason: 'KMSPluginReady',
      observedGeneration: 2,
    });
    // A failed pre-flight is one, and a control plane not attached yet has nothing running to keep.
    expect(
      clusterStatus({
        generation: 2,
        previous: ready,
        validation: o.validation,
        outcome: { ...waiting, failed: true, message: 'KMS pre-flight failed: x' },
        attached: true,
        now,
      }).conditions!.find((c) => c.type === 'Ready'),
    ).toMatchObject({ status: 'False', reason: 'WaitingForPreflight' });
    expect(
      clusterStatus({
        generation: 2,
        previous: ready,
        validation: o.validation,
        outcome: waiting,
        attached: false,
        now,
      }).phase,
    ).toBe('WaitingForPreflight');
  });
  it('keeps lastTransitionTime when nothing changed', () => {
    const o = observed(spec());
    const input = {
      generation: 1,
      validation: o.validation,
      outcome: { kind: 'done' } as const,
      tenant: { controlPlaneReady: false },
    };
    const first = clusterStatus({ ...input, previous: undefined, now });
    const second = clusterStatus({ ...input, previous: first, now: new Date('2026-11-22T11:00:00Z') });
    expect(second).toEqual(first);
  });
});
