import { describe, expect, it } from 'vitest';
import type { KmsKeySpec, TransitKey, TransitKeyOwner } from '@kdc/shared';
import { checkSpec, planKmsKey, type KmsKeyObservation } from './plan.ts';

const t0 = 1_760_000_000; // creation of version 1 (unix s)
const key = (latest = 1, extra: Partial<TransitKey> = {}): TransitKey => ({
  name: 'ns.k',
  type: 'aes256-gcm96',
  latestVersion: latest,
  minDecryptionVersion: 1,
  minEncryptionVersion: 0,
  deletionAllowed: false,
  exportable: false,
  autoRotatePeriodSeconds: 0,
  versions: Object.fromEntries(Array.from({ length: latest }, (_, i) => [i + 1, t0 + i * 30])),
  ...extra,
});
const spec = (s: Partial<KmsKeySpec> = {}): KmsKeySpec => ({
  purpose: 'etcd',
  algorithm: 'aes256-gcm96',
  deletionPolicy: 'retain',
  exportable: false,
  ...s,
});
const owner = (o: Partial<TransitKeyOwner> = {}): TransitKeyOwner => ({
  namespace: 'ns',
  kmsKey: 'k',
  uid: 'u1',
  purpose: 'etcd',
  origin: 'created',
  claimedAt: '2025-10-09T08:53:20Z',
  ...o,
});
const obs = (o: Partial<KmsKeyObservation> = {}): KmsKeyObservation => ({
  name: 'k',
  namespace: 'ns',
  uid: 'u1',
  generation: 1,
  spec: spec(),
  status: { currentVersion: 1 },
  hasFinalizer: true,
  organization: 'acme',
  mounts: { transit: true, registry: true },
  transitKeyName: 'ns.k',
  ownership: { kind: 'owned', owner: owner() },
  transit: key(),
  now: new Date((t0 + 10) * 1000),
  minRotationSeconds: 1,
  ...o,
});
const rotating = spec({ rotation: { enabled: true, interval: '30s' } });
const ready = (plan: ReturnType<typeof planKmsKey>) => plan.status.conditions?.find((c) => c.type === 'Ready');

describe('checkSpec', () => {
  it.each([
    [spec({ exportable: true }), 'ExportableNotAllowed'],
    [spec({ rotation: { enabled: true } }), 'InvalidRotationInterval'],
    [spec({ rotation: { enabled: true, interval: '2w' } }), 'InvalidRotationInterval'],
    [spec({ rotation: { enabled: true, interval: '0s' } }), 'InvalidRotationInterval'],
  ])('refuses %j with %s', (s, reason) => expect(checkSpec(s)).toMatchObject({ ok: false, reason }));
  it('accepts short KMSKey intervals', () =>
    expect(checkSpec(spec({ rotation: { enabled: true, interval: '45s' } }))).toEqual({
      ok: true,
      intervalSeconds: 45,
    }));
  it('refuses an interval under the platform floor, naming the floor', () => {
    expect(checkSpec(spec({ rotation: { enabled: true, interval: '1s' } }), 7 * 86_400)).toMatchObject({
      ok: false,
      reason: 'RotationIntervalTooShort',
      message: expect.stringMatching(/at least 7d/),
    });
    expect(checkSpec(spec({ rotation: { enabled: true, interval: '7d' } }), 7 * 86_400)).toEqual({
      ok: true,
      intervalSeconds: 7 * 86_400,
    });
  });
});

describe('planKmsKey: creation and readiness', () => {
  it('adds the finalizer first', () =>
    expect(planKmsKey(obs({ hasFinalizer: false })).action).toEqual({ kind: 'addFinalizer' }));
  it('mounts transit/, then the ownership registry, before anything else', () => {
    expect(planKmsKey(obs({ mounts: { transit: false, registry: false } })).action).toEqual({
      kind: 'ensureMount',
      mount: 'transit',
    });
    expect(planKmsKey(obs({ mounts: { transit: true, registry: false } })).action).toEqual({
      kind: 'ensureMount',
      mount: 'registry',
    });
  });
  it('claims the name before it creates the key', () => {
    const plan = planKmsKey(
      obs({ transit: null, ownership: { kind: 'unclaimed' }, now: new Date('2026-01-01T00:00:00Z') }),
    );
    expect(plan.action).toEqual({ kind: 'claim', owner: owner({ claimedAt: '2026-01-01T00:00:00Z' }) });
    expect(plan.status.keyId).toBeUndefined();
  });
  it('creates a missing key of the requested type once it owns the name', () =>
    expect(planKmsKey(obs({ transit: null, spec: spec({ algorithm: 'chacha20-poly1305' }) })).action).toEqual({
      kind: 'createKey',
      type: 'chacha20-poly1305',
    }));
  it('reports a ready key with its id, version and times', () => {
    const plan = planKmsKey(obs());
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status).toMatchObject({
      currentVersion: 1,
      keyId: 'acme/transit/keys/ns.k',
      minDecryptionVersion: 1,
      observedGeneration: 1,
      lastRotatedTime: '2025-10-09T08:53:20Z',
    });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'KeyReady',
    });
    expect(plan.status.conditions?.find((c) => c.type === 'RotationScheduled')).toMatchObject({
      status: 'False',
      reason: 'RotationDisabled',
    });
  });
  it('invalid spec: Ready=False with the reason, and no action', () => {
    const plan = planKmsKey(obs({ spec: spec({ exportable: true }) }));
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ExportableNotAllowed',
    });
  });
  it('refuses to pretend an algorithm change happened', () => {
    const plan = planKmsKey(obs({ spec: spec({ algorithm: 'chacha20-poly1305' }) }));
    expect(plan.action.kind).toBe('none');
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'AlgorithmMismatch',
    });
  });
});

describe('planKmsKey: ownership', () => {
  it('never adopts an existing key nobody recorded: no action, a reason an admin can act on', () => {
    const plan = planKmsKey(obs({ ownership: { kind: 'unclaimed' } }));
    expect(plan.action).toEqual({ kind: 'none' });
    expect(ready(plan)).toMatchObject({
      status: 'False',
      reason: 'TransitKeyNotOwned',
      message: expect.stringMatching(/kubectl kdc keys adopt/),
    });
    expect(plan.status.keyId).toBeUndefined();
  });
  it('shows a refusal from the registry and acts on nothing', () => {
    const plan = planKmsKey(
      obs({ ownership: { kind: 'refused', reason: 'TransitKeyOwnedElsewhere', message: 'belongs to KMSKey x/y' } }),
    );
    expect(plan.action).toEqual({ kind: 'none' });
    expect(ready(plan)).toMatchObject({ status: 'False', reason: 'TransitKeyOwnedElsewhere' });
  });
  it('claims a legacy key created for it, keeping the key and its purpose', () => {
    const plan = planKmsKey(
      obs({ transitKeyName: 'ns-k', ownership: { kind: 'legacyAdoptable' }, now: new Date('2026-01-01T00:00:00Z') }),
    );
    expect(plan.action).toEqual({
      kind: 'claim',
      owner: owner({ origin: 'legacy', claimedAt: '2026-01-01T00:00:00Z' }),
    });
    expect(plan.event).toMatchObject({ reason: 'LegacyKeyMigrated' });
  });
  it('a migrated key is not rotated at once: its clock starts at the claim', () => {
    const claimed = owner({ origin: 'legacy', claimedAt: new Date((t0 + 3600) * 1000).toISOString() });
    const plan = planKmsKey(
      obs({ spec: rotating, ownership: { kind: 'owned', owner: claimed }, now: new Date((t0 + 3610) * 1000) }),
    );
    expect(plan.action.kind).toBe('none');
    expect(plan.requeueAfterMs).toBe(20_000);
  });
});

describe('planKmsKey: purpose', () => {
  it('the purpose comes from the ownership record, not from anything the tenant edits', () => {
    const plan = planKmsKey(
      obs({ spec: spec({ purpose: 'etcd' }), ownership: { kind: 'owned', owner: owner({ purpose: 'backup' }) } }),
    );
    expect(ready(plan)).toMatchObject({
      status: 'False',
      reason: 'PurposeChangeRefused',
      message: expect.stringMatching(/created for purpose backup/),
    });
  });
  it('refuses a purpose change and changes nothing', () => {
    const plan = planKmsKey(obs({ spec: spec({ purpose: 'application' }) }));
    expect(plan.action).toEqual({ kind: 'none' });
    expect(plan.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'PurposeChangeRefused',
    });
  });
});

describe('planKmsKey: rotation', () => {
  it('the clock does not depend on status: an emptied status neither delays nor forces a rotation', () => {
    expect(planKmsKey(obs({ spec: rotating, status: undefined, now: new Date((t0 + 10) * 1000) })).requeueAfterMs).toBe(
      20_000,
    );
    expect(planKmsKey(obs({ spec: rotating, status: undefined, now: new Date((t0 + 30) * 1000) })).action).toEqual({
      kind: 'rotate',
    });
  });
  it('below the platform floor: refused, no rotation', () => {
    const plan = planKmsKey(
      obs({
        spec: spec({ rotation: { enabled: true, interval: '1s' } }),
        minRotationSeconds: 7 * 86_400,
        now: new Date((t0 + 3600) * 1000),
      }),
    );
    expect(plan.action).toEqual({ kind: 'none' });
    expect(ready(plan)).toMatchObject({ status: 'False', reason: 'RotationIntervalTooShort' });
  });
  it('requeues exactly at the due time, counted from the latest version creation', () => {
    const plan = planKmsKey(obs({ spec: rotating, now: new Date((t0 + 10) * 1000) }));
    expect(plan.requeueAfterMs).toBe(20_000);
    expect(plan.status.nextRotationTime).toBe('2025-10-09T08:53:50Z');
  });
  it('rotates when due', () =>
    expect(planKmsKey(obs({ spec: rotating, now: new Date((t0 + 30) * 1000) })).action).toEqual({ kind: 'rotate' }));
  it('does not rotate again after a restart right after a rotation (the new version restarts the clock)', () => {
    const plan = planKmsKey(
      obs({ spec: rotating, transit: key(2), status: { currentVersion: 1 }, now: new Date((t0 + 31) * 1000) }),
    );
    expect(plan.action.kind).toBe('none');
    expect(plan.requeueAfterMs).toBe(29_000);
  });
  it('never advances min_decryption_version (only reports it)', () => {
    const plan = planKmsKey(obs({ spec: rotating, transit: key(3, { minDecryptionVersion: 2 }) }));
    expect(plan.status.minDecryptionVersion).toBe(2);
    expect(['rotate', 'none']).toContain(plan.action.kind);
  });
});
