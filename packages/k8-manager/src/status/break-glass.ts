import { KDC_CLUSTER_CONDITIONS as C, type ConditionInput, type KdcClusterStatus } from '@kdc/shared';

/**
 * ForceDisabled (SPEC 3.1, 5): True on every reconcile while KMS is detached by break-glass and the
 * annotation is still there. A cluster that never had it gets none; one that had it keeps a False.
 */
export function forceDisabledCondition(
  forceDisabled: boolean,
  previous: KdcClusterStatus | undefined,
): Omit<ConditionInput, 'observedGeneration'> | undefined {
  if (forceDisabled) {
    return {
      type: C.forceDisabled,
      status: 'True',
      reason: 'BreakGlassHonoured',
      message:
        'KMS was detached by the break-glass annotation without the disable migration: rows still encrypted are unreadable; remove the annotation to end this warning',
    };
  }
  if (!previous?.conditions?.some((c) => c.type === C.forceDisabled)) return undefined;
  return {
    type: C.forceDisabled,
    status: 'False',
    reason: 'NotForceDisabled',
    message: 'KMS is attached again, or the break-glass annotation was removed',
  };
}
