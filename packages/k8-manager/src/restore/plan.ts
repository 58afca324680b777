import { KDC_CLUSTER_CONDITIONS, isRestoreFinished, type ConditionInput, type RestoreState } from '@kdc/shared';
import type { JobOutcome } from '../backup/jobs.ts';
import type { EtcdLayoutResult } from '../tenant/etcd-layout.ts';

// The restore of SPEC 3.1 (`kube-dc.com/restore-from`) as one pure function that returns the
// next single change. States live in status.restore (the kube-dc.com/restore-state annotation
// only shows them: the tenant writes annotations, and a state it wrote is never resumed):
//   Validating -> DrainingControlPlane -> StoppingEtcd -> RestoringSnapshot -> StartingEtcd
//   -> StartingControlPlane -> Succeeded
// Validating changes nothing, so a refusal there ends Failed at once. A failure after the tenant
// was stopped (the restore Job failed, the DataStore stopped being this tenant's alone) is
// recorded and the tenant is brought back up on its old data first (the restore swaps the data
// dir only after verifying everything), then Failed. Nothing is ever done to an object that is
// not there: a missing etcd StatefulSet ends the restore Failed, naming it.

export interface ObservedRestore {
  /** `kube-dc.com/restore-from`; undefined: no restore requested. */
  requestedKey?: string;
  state?: RestoreState;
  /** `kube-dc.com/restore-failure`: `<Reason>: <detail>`. */
  failure?: string;
  /** What Validating found (undefined: not looked up yet). */
  backup?: { ok: true } | { ok: false; reason: string; message: string };
  /**
   * The DataStore's etcd (undefined: not looked up yet). `ok: false` says why it cannot be
   * restored into; `statefulSet` is null when there is no StatefulSet to scale (with the reason).
   */
  etcd?: EtcdLayoutResult & {
    statefulSet: string | null;
    missing?: string;
    specReplicas: number;
    runningReplicas: number;
    readyReplicas: number;
  };
  desiredReplicas: number;
  tcpReplicas?: number;
  tcpReadyReplicas: number;
  tcpReady: boolean;
  /** `<cluster>-etcd-restore`; null: none. */
  restoreJob: JobOutcome | null;
  /** How long the current state has lasted (ms), when known. */
  stateAgeMs?: number;
}

/** How long etcd and then the control plane may take to come back before the restore is Failed. */
export const START_TIMEOUT_MS = 10 * 60_000;

export type RestoreAction =
  | { kind: 'idle' }
  | { kind: 'wait'; message: string }
  | { kind: 'setState'; state: RestoreState; failure?: string }
  | { kind: 'deleteRestoreJob' }
  | { kind: 'createRestoreJob' }
  | { kind: 'scaleControlPlane'; replicas: number }
  | { kind: 'scaleEtcd'; replicas: number };

/** Ends the restore: there is no StatefulSet to stop or start, and the tenant's control plane stays drained. */
const missingEtcd = (o: ObservedRestore): RestoreAction => ({
  kind: 'setState',
  state: 'Failed',
  failure: `EtcdStatefulSetMissing: ${o.etcd?.missing ?? 'the etcd StatefulSet of the DataStore is not known'}; the control plane stays at 0 replicas: recreate the StatefulSet, then request the restore again (or scale TenantControlPlane back to ${o.desiredReplicas})${o.failure ? ` (before: ${o.failure})` : ''}`,
});

export function planRestore(o: ObservedRestore): RestoreAction {
  if (!o.requestedKey || isRestoreFinished(o.state)) return { kind: 'idle' };
  switch (o.state) {
    case undefined:
      // A Job left from an earlier restore would be mistaken for this one's.
      if (o.restoreJob) return { kind: 'deleteRestoreJob' };
      return { kind: 'setState', state: 'Validating' };
    case 'Validating':
      if (!o.backup || !o.etcd) return { kind: 'wait', message: 'validating the backup and the DataStore' };
      if (!o.backup.ok)
        return { kind: 'setState', state: 'Failed', failure: `${o.backup.reason}: ${o.backup.message}` };
      if (!o.etcd.ok) return { kind: 'setState', state: 'Failed', failure: `${o.etcd.reason}: ${o.etcd.message}` };
      return { kind: 'setState', state: 'DrainingControlPlane' };
    case 'DrainingControlPlane':
      if (o.tcpReplicas !== 0) return { kind: 'scaleControlPlane', replicas: 0 };
      if (o.tcpReadyReplicas > 0) return { kind: 'wait', message: 'waiting for the control plane pods to stop' };
      return { kind: 'setState', state: 'StoppingEtcd' };
    case 'StoppingEtcd':
      if (!o.etcd) return { kind: 'wait', message: 'reading the etcd StatefulSet' };
      if (!o.etcd.statefulSet) return missingEtcd(o);
      if (o.etcd.specReplicas !== 0) return { kind: 'scaleEtcd', replicas: 0 };
      if (o.etcd.runningReplicas > 0) return { kind: 'wait', message: 'waiting for etcd to stop' };
      return { kind: 'setState', state: 'RestoringSnapshot' };
    case 'RestoringSnapshot':
      if (!o.restoreJob) {
        if (!o.etcd) return { kind: 'wait', message: 'reading the etcd StatefulSet' };
        if (!o.etcd.statefulSet) return missingEtcd(o);
        // What Validating checked may have changed since (a neighbour on the DataStore, a new layout).
        if (!o.etcd.ok)
          return {
            kind: 'setState',
            state: 'StartingEtcd',
            failure: `${o.etcd.reason}: ${o.etcd.message}; etcd keeps its previous data`,
          };
        return { kind: 'createRestoreJob' };
      }
      if (!o.restoreJob.result) return { kind: 'wait', message: `restore Job ${o.restoreJob.name} is running` };
      if (o.restoreJob.result === 'Failed') {
        return {
          kind: 'setState',
          state: 'StartingEtcd',
          failure: `RestoreJobFailed: Job ${o.restoreJob.name} failed${o.restoreJob.reason ? ` (${o.restoreJob.reason})` : ''}; etcd keeps its previous data`,
        };
      }
      return { kind: 'setState', state: 'StartingEtcd' };
    case 'StartingEtcd':
      if (!o.etcd) return { kind: 'wait', message: 'reading the etcd StatefulSet' };
      if (!o.etcd.statefulSet) return missingEtcd(o);
      if (o.etcd.specReplicas !== 1) return { kind: 'scaleEtcd', replicas: 1 };
      if (o.etcd.readyReplicas < 1) {
        if ((o.stateAgeMs ?? 0) > START_TIMEOUT_MS)
          return {
            kind: 'setState',
            state: 'Failed',
            failure: `EtcdStartFailed: the etcd StatefulSet is not Ready after ${START_TIMEOUT_MS / 60_000} minutes; look at its pod; the data from before the restore is in <data-dir>.pre-restore`,
          };
        return { kind: 'wait', message: 'waiting for etcd to be ready' };
      }
      return { kind: 'setState', state: 'StartingControlPlane' };
    case 'StartingControlPlane':
      if (o.tcpReplicas !== o.desiredReplicas) return { kind: 'scaleControlPlane', replicas: o.desiredReplicas };
      if (!o.tcpReady) {
        if ((o.stateAgeMs ?? 0) > START_TIMEOUT_MS)
          return {
            kind: 'setState',
            state: 'Failed',
            failure: `ControlPlaneStartFailed: the TenantControlPlane is not Ready after ${START_TIMEOUT_MS / 60_000} minutes; look at its pods (kube-apiserver and kms-plugin logs)`,
          };
        return { kind: 'wait', message: 'waiting for the control plane to be Ready' };
      }
      return { kind: 'setState', state: o.failure ? 'Failed' : 'Succeeded' };
    default:
      return {
        kind: 'setState',
        state: 'Failed',
        failure: `UnknownState: restore-state "${o.state as string}" is not a state of this controller`,
      };
  }
}

/** RestoreReady for the current restore (undefined: none was ever requested). */
export function restoreCondition(
  key: string | undefined,
  state: RestoreState | undefined,
  failure: string | undefined,
): Omit<ConditionInput, 'observedGeneration'> | undefined {
  if (!key) return undefined;
  const type = KDC_CLUSTER_CONDITIONS.restoreReady;
  if (state === 'Succeeded')
    return { type, status: 'True', reason: 'Succeeded', message: `Restore from "${key}" complete` };
  if (state === 'Failed') {
    const [reason, ...detail] = (failure ?? 'Failed: no detail recorded').split(': ');
    return {
      type,
      status: 'False',
      reason: 'Failed',
      message: `Restore from "${key}" failed (${reason}): ${detail.join(': ')}`,
    };
  }
  return {
    type,
    status: 'False',
    reason: 'RestoreInProgress',
    message: `Restore from "${key}": ${state ?? 'requested'}${failure ? ` (bringing the tenant back after: ${failure})` : ''}`,
  };
}
