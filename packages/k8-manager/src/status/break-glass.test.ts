import { describe, expect, it } from 'vitest';
import { validateCluster, type ClusterFacts, type Condition } from '@kdc/shared';
import { clusterStatus } from './cluster-status.ts';

// Break-glass in status (SPEC 3.1, 5): a ForceDisabled condition on every reconcile while KMS is
// detached and the annotation is still there; Ready says so instead of dropping back to Reconciled.

const now = new Date('2026-11-22T10:00:00Z');
const platform = { ok: true as const, config: { kmsPluginImage: 'kms:1', openBaoUrl: 'https://bao' } };
const BREAK_GLASS = 'security.kube-dc.com/encryption-force-disable-confirmed';
const validation = (more: Partial<ClusterFacts>, spec: object = { version: 'v1.35.0' }) =>
  validateCluster({
    namespace: 'ns',
    name: 'c1',
    spec,
    annotations: {},
    platform,
    kmsKeys: [],
    otherClusters: [],
    attached: false,
    now,
    ...more,
  });
const status = (forceDisabled: boolean, previous?: Condition[], v = validation({})) =>
  clusterStatus({
    generation: 2,
    previous: previous ? { conditions: previous } : undefined,
    validation: v,
    outcome: { kind: 'done' },
    forceDisabled,
    now,
  });
const find = (conditions: Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

describe('clusterStatus: break-glass', () => {
  it('says ForceDisabled (condition and Ready) while KMS is detached by break-glass', () => {
    const s = status(true);
    expect(find(s.conditions, 'ForceDisabled')).toMatchObject({
      status: 'True',
      reason: 'BreakGlassHonoured',
      observedGeneration: 2,
    });
    expect(find(s.conditions, 'ForceDisabled')!.message).toMatch(/rows still encrypted are unreadable/);
    expect(find(s.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'ForceDisabled' });
  });

  it('keeps saying it on the next reconcile, long after the annotation went stale', () => {
    const first = status(true).conditions!;
    const v = validation({ attached: false, annotations: { [BREAK_GLASS]: '2001-01-01T00:00:00Z' } });
    expect(v).toMatchObject({ ok: true, forceDisabled: true });
    const again = status(v.ok && v.forceDisabled, first);
    expect(find(again.conditions, 'ForceDisabled')).toMatchObject({
      status: 'True',
      lastTransitionTime: find(first, 'ForceDisabled')!.lastTransitionTime,
    });
    expect(find(again.conditions, 'Ready')!.reason).toBe('ForceDisabled');
  });

  it('turns False once the annotation is gone, and Ready goes back to Reconciled', () => {
    const s = status(false, status(true).conditions);
    expect(find(s.conditions, 'ForceDisabled')).toMatchObject({ status: 'False', reason: 'NotForceDisabled' });
    expect(find(s.conditions, 'Ready')).toMatchObject({ status: 'True', reason: 'Reconciled' });
  });

  it('turns False when encryption is enabled again', () => {
    const enabled = validation({}, { version: 'v1.35.0', encryption: { etcd: { enabled: true } } });
    expect(enabled.ok).toBe(true);
    expect(find(status(false, status(true).conditions, enabled).conditions, 'ForceDisabled')).toMatchObject({
      status: 'False',
    });
  });

  it('adds no ForceDisabled condition to a cluster that never had one', () => {
    expect(find(status(false).conditions, 'ForceDisabled')).toBeUndefined();
  });

  it('leaves it as it was while the spec is refused', () => {
    const before = status(true).conditions!;
    const refused = validation({ attached: true, annotations: { [BREAK_GLASS]: '2001-01-01T00:00:00Z' } });
    expect(refused.ok).toBe(false);
    expect(find(status(false, before, refused).conditions, 'ForceDisabled')).toEqual(find(before, 'ForceDisabled'));
  });
});
