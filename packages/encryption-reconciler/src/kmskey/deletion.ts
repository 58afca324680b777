import type { KmsKeySpec } from '@kdc/shared';

// What a KMSKey's deletion waits for: only the Kubernetes API. `retain` keeps the Transit key (and
// its ownership record) and lets go at once; `schedule` records the destruction as a cleanup task
// in the controllers' namespace (the tenant cannot reach it), then lets go. The countdown runs
// there, so neither an OpenBao outage nor a 30-day countdown holds the KMSKey, or its namespace,
// in Terminating; cancelling is deleting that task (docs/runbook.md).

export interface KmsKeyDeletionObservation {
  hasFinalizer: boolean;
  deletionPolicy: KmsKeySpec['deletionPolicy'];
  /** The cleanup task that destroys this KMSKey's Transit key exists. */
  destructionRecorded: boolean;
  /** The task's name, for the event that tells how to cancel it. */
  taskName: string;
  due: Date;
}

export type KmsKeyDeletionAction = { kind: 'recordDestruction' } | { kind: 'removeFinalizer' } | { kind: 'none' };

export interface KmsKeyDeletionPlan {
  action: KmsKeyDeletionAction;
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

export function planKmsKeyDeletion(o: KmsKeyDeletionObservation, controllerNamespace: string): KmsKeyDeletionPlan {
  if (!o.hasFinalizer) return { action: { kind: 'none' } };
  if (o.deletionPolicy !== 'schedule') {
    return {
      action: { kind: 'removeFinalizer' },
      event: {
        type: 'Normal',
        reason: 'KeyRetained',
        message: 'KMSKey deleted; its Transit key is retained in OpenBao',
      },
    };
  }
  if (!o.destructionRecorded) return { action: { kind: 'recordDestruction' } };
  return {
    action: { kind: 'removeFinalizer' },
    event: {
      type: 'Warning',
      reason: 'DeletionScheduled',
      message: `the Transit key will be destroyed at ${o.due.toISOString()}; a platform admin cancels with: kubectl -n ${controllerNamespace} delete configmap ${o.taskName}`,
    },
  };
}
