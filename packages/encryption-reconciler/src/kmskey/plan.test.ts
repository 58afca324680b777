import { describe, expect, it } from 'vitest';
import type { KmsKeySpec, TransitKey } from '@kdc/shared';
import { checkSpec, planKmsKey, type KmsKeyObservation } from './plan.ts';

const t0 = 1_760_000_000; // creation of version 1 (unix s)
const key = (latest = 1, extra: Partial<TransitKey> = {}): TransitKey => ({
  name: 'ns-k', type: 'aes256-gcm96', latestVersion: latest, minDecryptionVersion: 1, minEncryptionVersion: 0,
  deletionAllowed: false, exportable: false, autoRotatePeriodSeconds: 0,
  versions: Object.fromEntries(Array.from({ length: latest }, (_, i) => [i + 1, t0 + i * 30])), ...extra,
});
const spec = (s: Partial<KmsKeySpec> = {}): KmsKeySpec => ({ purpose: 'etcd', algorithm: 'aes256-gcm96', deletionPolicy: 'retain', exportable: false, ...s });
const obs = (o: Partial<KmsKeyObservation> = {}): KmsKeyObservation => ({
  name: 'k', namespace: 'ns', generation: 1, spec: spec(), status: { currentVersion: 1 }, deleting: false, hasFinalizer: true,
  organization: 'acme', transitKeyName: 'ns-k', boundPurpose: 'etcd', transit: key(), mountReady: true, now: new Date((t0 + 10) * 1000), deletionCountdownSeconds: 30 * 86_400, ...o,
});
const rotating = spec({ rotation: { enabled: true, interval: '30s' } });

describe('checkSpec', () => {
  it.each([
    [spec({ exportable: true }), 'ExportableNotAllowed'],
    [spec({ rotation: { enabled: true } }), 'InvalidRotationInterval'],
    [spec({ rotation: { enabled: true, interval: '2w' } }), 'InvalidRotationInterval'],
    [spec({ rotation: { enabled: true, interval: '0s' } }), 'InvalidRotationInterval'],
  ])('refuses %j with %s', (s, reason) => expect(checkSpec(s)).toMatchObject({ ok: false, reason }));
  it('accepts short KMSKey intervals', () => expect(checkSpec(spec({ rotation: { enabled: true, interval: '45s' } }))).toEqual({ ok: true, intervalSeconds: 45 }));
});

describe('planKmsKey: creation and readiness', () => {
  it('adds the finalizer first', () => expect(planKmsKey(obs({ hasFinalizer: false })).action).toEqual({ kind: 'addFinalizer' }));
  it('mounts transit/ before anything else', () => expect(planKmsKey(obs({ mountReady: false })).action).toEqual({ kind: 'ensureMount' }));
  it('creates a missing key of the requested type', () => expect(planKmsKey(obs({ transit: null, spec: spec({ algorithm: 'chacha20-poly1305' }) })).action).toEqual({ kind: 'createKey', type: 'chacha20-poly1305' }));
  it('reports a ready key with its id, version and times', () => {
    const plan = planKmsKey(obs());
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status).toMatchObject({ currentVersion: 1, keyId: 'acme/transit/keys/ns-k', minDecryptionVersion: 1, observedGeneration: 1, lastRotatedTime: '2025-10-09T08:53:20Z' });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'KeyReady' });
    expect(plan.status.conditions?.find((c) => c.type === 'RotationScheduled')).toMatchObject({ status: 'False', reason: 'RotationDisabled' });
  });
  it('invalid spec: Ready=False with the reason, and no action', () => {
    const plan = planKmsKey(obs({ spec: spec({ exportable: true }) }));
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ExportableNotAllowed' });
  });
  it('refuses to pretend an algorithm change happened', () => {
    const plan = planKmsKey(obs({ spec: spec({ algorithm: 'chacha20-poly1305' }) }));
    expect(plan.action.kind).toBe('none');
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'AlgorithmMismatch' });
  });
});

describe('planKmsKey: purpose', () => {
  it('records the purpose of an existing key once', () => expect(planKmsKey(obs({ boundPurpose: undefined })).action).toEqual({ kind: 'recordPurpose', purpose: 'etcd' }));
  it('refuses a purpose change and changes nothing', () => {
    const plan = planKmsKey(obs({ spec: spec({ purpose: 'application' }) }));
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'PurposeChangeRefused' });
  });
});

describe('planKmsKey: rotation', () => {
  it('never rotates on the first reconcile, even when the key is older than the interval', () => {
    const plan = planKmsKey(obs({ spec: rotating, status: undefined, now: new Date((t0 + 3600) * 1000) }));
    expect(plan.action.kind).toBe('none');
    expect(plan.requeueAfterMs).toBe(30_000);
  });
  it('requeues exactly at the due time, counted from the latest version creation', () => {
    const plan = planKmsKey(obs({ spec: rotating, now: new Date((t0 + 10) * 1000) }));
    expect(plan.requeueAfterMs).toBe(20_000);
    expect(plan.status.nextRotationTime).toBe('2025-10-09T08:53:50Z');
  });
  it('rotates when due', () => expect(planKmsKey(obs({ spec: rotating, now: new Date((t0 + 30) * 1000) })).action).toEqual({ kind: 'rotate' }));
  it('does not rotate again after a restart right after a rotation (the new version restarts the clock)', () => {
    const plan = planKmsKey(obs({ spec: rotating, transit: key(2), status: { currentVersion: 1 }, now: new Date((t0 + 31) * 1000) }));
    expect(plan.action.kind).toBe('none');
    expect(plan.requeueAfterMs).toBe(29_000);
  });
  it('never advances min_decryption_version (only reports it)', () => {
    const plan = planKmsKey(obs({ spec: rotating, transit: key(3, { minDecryptionVersion: 2 }) }));
    expect(plan.status.minDecryptionVersion).toBe(2);
    expect(['rotate', 'none']).toContain(plan.action.kind);
  });
});

describe('planKmsKey: deletion', () => {
  const deleting = (s: Partial<KmsKeyObservation>) => obs({ deleting: true, ...s });
  it('retain: releases the object, keeps the Transit key', () => expect(planKmsKey(deleting({})).action).toEqual({ kind: 'removeFinalizer' }));
  it('schedule: starts the countdown and waits', () => {
    const plan = planKmsKey(deleting({ spec: spec({ deletionPolicy: 'schedule' }) }));
    expect(plan.action.kind).toBe('none');
    expect(plan.status.scheduledDeletion).toBe('2025-11-08T08:53:30Z');
    expect(plan.requeueAfterMs).toBe(30 * 86_400_000);
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'DeletionScheduled' });
  });
  it('schedule: after the countdown enables deletion, then deletes', () => {
    const after = { spec: spec({ deletionPolicy: 'schedule' as const }), status: { currentVersion: 1, scheduledDeletion: '2025-10-09T08:53:25Z' } };
    expect(planKmsKey(deleting(after)).action).toEqual({ kind: 'enableDeletion' });
    expect(planKmsKey(deleting({ ...after, transit: key(1, { deletionAllowed: true }) })).action).toEqual({ kind: 'deleteKey' });
  });
  it('switching back to retain cancels the countdown and keeps the key', () => {
    const plan = planKmsKey(deleting({ status: { currentVersion: 1, scheduledDeletion: '2099-01-01T00:00:00Z' } }));
    expect(plan.action).toEqual({ kind: 'removeFinalizer' });
  });
  it('a missing Transit key lets the object go', () => expect(planKmsKey(deleting({ transit: null, spec: spec({ deletionPolicy: 'schedule' }) })).action).toEqual({ kind: 'removeFinalizer' }));
});
