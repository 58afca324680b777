import {
  type Condition, type ConditionInput, type KmsKeySpec, type KmsKeyStatus, type TransitKey,
  KMSKEY_CONDITIONS, kmsKeyId, parseKmsKeyInterval, rfc3339, setConditions, formatDuration,
} from '@kdc/shared';

// The KMSKey lifecycle as one pure function: given what the cluster and OpenBao say now, the
// single next change to make and the status to show. The reconciler only executes it.

export interface KmsKeyObservation {
  name: string;
  namespace: string;
  generation: number;
  spec: KmsKeySpec;
  status: KmsKeyStatus | undefined;
  deleting: boolean;
  hasFinalizer: boolean;
  organization: string | undefined;
  transitKeyName: string;
  /** The purpose recorded when the Transit key was created (annotation), if any. */
  boundPurpose: string | undefined;
  /** null: OpenBao answered that the key does not exist. */
  transit: TransitKey | null;
  mountReady: boolean;
  now: Date;
  /** Length of the schedule-deletion countdown (30 days in production). */
  deletionCountdownSeconds: number;
}

export type KmsKeyAction =
  | { kind: 'addFinalizer' }
  | { kind: 'recordPurpose'; purpose: string }
  | { kind: 'removeFinalizer' }
  | { kind: 'ensureMount' }
  | { kind: 'createKey'; type: string }
  | { kind: 'rotate' }
  | { kind: 'enableDeletion' }
  | { kind: 'deleteKey' }
  | { kind: 'none' };

export interface KmsKeyPlan {
  action: KmsKeyAction;
  status: KmsKeyStatus;
  requeueAfterMs?: number;
  /** A reason for an Event when the action is worth telling people about. */
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

export type SpecCheck = { ok: true; intervalSeconds?: number } | { ok: false; reason: string; message: string };

export function checkSpec(spec: KmsKeySpec): SpecCheck {
  if (spec.exportable) return { ok: false, reason: 'ExportableNotAllowed', message: 'spec.exportable must be false: key material never leaves OpenBao' };
  if (!spec.rotation?.enabled) return { ok: true };
  if (!spec.rotation.interval) return { ok: false, reason: 'InvalidRotationInterval', message: 'spec.rotation.interval is required when rotation is enabled (e.g. 90d, 2160h, 1h30m)' };
  const parsed = parseKmsKeyInterval(spec.rotation.interval);
  if (!parsed.ok) return { ok: false, reason: 'InvalidRotationInterval', message: `spec.rotation.interval: ${parsed.error}` };
  if (parsed.seconds < 1) return { ok: false, reason: 'InvalidRotationInterval', message: 'spec.rotation.interval must be at least 1s' };
  return { ok: true, intervalSeconds: parsed.seconds };
}

const seconds = (unix: number) => new Date(unix * 1000);

function baseStatus(o: KmsKeyObservation): KmsKeyStatus {
  const t = o.transit;
  return {
    ...o.status,
    observedGeneration: o.generation,
    ...(t
      ? {
          currentVersion: t.latestVersion,
          keyId: kmsKeyId(o.organization, o.transitKeyName),
          lastRotatedTime: rfc3339(seconds(t.versions[t.latestVersion] ?? 0)),
          minDecryptionVersion: t.minDecryptionVersion,
        }
      : {}),
  };
}

function withConditions(status: KmsKeyStatus, now: Date, inputs: ConditionInput[]): KmsKeyStatus {
  return { ...status, conditions: setConditions(status.conditions as Condition[] | undefined, inputs, now) };
}

export function planKmsKey(o: KmsKeyObservation): KmsKeyPlan {
  const gen = o.generation;
  const cond = (type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): ConditionInput => ({ type, status, reason, message, observedGeneration: gen });
  let status = baseStatus(o);

  if (o.deleting) return planDeletion(o, status, cond);
  if (!o.hasFinalizer) return { action: { kind: 'addFinalizer' }, status };

  const spec = checkSpec(o.spec);
  if (!spec.ok) {
    return { action: { kind: 'none' }, status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.ready, 'False', spec.reason, spec.message)]) };
  }
  if (!o.mountReady) {
    return {
      action: { kind: 'ensureMount' },
      status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.openBaoMounted, 'False', 'MountMissing', 'enabling the transit/ mount')]),
    };
  }
  status = withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.openBaoMounted, 'True', 'Mounted', `transit/ is mounted in ${o.organization ? `namespace ${o.organization}` : 'the root namespace'}`)]);
  if (!o.transit) {
    return {
      action: { kind: 'createKey', type: o.spec.algorithm },
      status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.ready, 'False', 'Creating', `creating Transit key ${o.transitKeyName}`)]),
      event: { type: 'Normal', reason: 'KeyCreated', message: `Transit key ${o.transitKeyName} (${o.spec.algorithm}) created` },
    };
  }
  if (o.boundPurpose && o.boundPurpose !== o.spec.purpose) {
    return {
      action: { kind: 'none' },
      status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.ready, 'False', 'PurposeChangeRefused', `this key was created for purpose ${o.boundPurpose}; a purpose cannot change once the key exists: set spec.purpose back to ${o.boundPurpose} or create a new KMSKey`)]),
    };
  }
  if (!o.boundPurpose) return { action: { kind: 'recordPurpose', purpose: o.spec.purpose }, status };
  if (o.transit.type !== o.spec.algorithm) {
    return {
      action: { kind: 'none' },
      status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.ready, 'False', 'AlgorithmMismatch', `the Transit key is ${o.transit.type}; an algorithm cannot change after creation: set spec.algorithm back to ${o.transit.type} or create a new KMSKey`)]),
    };
  }
  // A key that was counting down to deletion and is switched back to retain is reprieved.
  if (status.scheduledDeletion && o.spec.deletionPolicy === 'retain') {
    const { scheduledDeletion: _cancelled, ...rest } = status;
    status = rest;
  }
  const ready = cond(KMSKEY_CONDITIONS.ready, 'True', 'KeyReady', `Transit key ${o.transitKeyName} version ${o.transit.latestVersion} is ready`);

  if (!spec.intervalSeconds) {
    const { nextRotationTime: _none, ...rest } = status;
    return { action: { kind: 'none' }, status: withConditions(rest, o.now, [ready, cond(KMSKEY_CONDITIONS.rotationScheduled, 'False', 'RotationDisabled', 'spec.rotation is not enabled')]) };
  }
  // The clock is the creation time of the latest version, kept by OpenBao: a restarted controller
  // computes the same due time, so it can neither rotate twice nor skip a rotation.
  const lastRotated = (o.transit.versions[o.transit.latestVersion] ?? 0) * 1000;
  const due = lastRotated + spec.intervalSeconds * 1000;
  const firstReconcile = o.status?.currentVersion === undefined;
  if (o.now.getTime() >= due && !firstReconcile) {
    return {
      action: { kind: 'rotate' },
      status: withConditions(status, o.now, [ready]),
      event: { type: 'Normal', reason: 'KeyRotated', message: `rotating Transit key ${o.transitKeyName} past version ${o.transit.latestVersion} (interval ${o.spec.rotation!.interval})` },
    };
  }
  const next = firstReconcile && o.now.getTime() >= due ? o.now.getTime() + spec.intervalSeconds * 1000 : due;
  return {
    action: { kind: 'none' },
    status: withConditions({ ...status, nextRotationTime: rfc3339(new Date(next)) }, o.now, [
      ready,
      cond(KMSKEY_CONDITIONS.rotationScheduled, 'True', 'Scheduled', `next rotation in ${formatDuration((next - o.now.getTime()) / 1000)} (every ${o.spec.rotation!.interval})`),
    ]),
    requeueAfterMs: Math.max(0, next - o.now.getTime()),
  };
}

function planDeletion(o: KmsKeyObservation, status: KmsKeyStatus, cond: (t: string, s: 'True' | 'False', r: string, m: string) => ConditionInput): KmsKeyPlan {
  if (!o.hasFinalizer) return { action: { kind: 'none' }, status };
  if (o.spec.deletionPolicy === 'retain' || !o.transit) {
    return {
      action: { kind: 'removeFinalizer' },
      status,
      event: { type: 'Normal', reason: 'KeyRetained', message: `KMSKey deleted; Transit key ${o.transitKeyName} is retained in OpenBao` },
    };
  }
  const scheduled = status.scheduledDeletion ? Date.parse(status.scheduledDeletion) : o.now.getTime() + o.deletionCountdownSeconds * 1000;
  const withSchedule = withConditions({ ...status, scheduledDeletion: rfc3339(new Date(scheduled)) }, o.now, [
    cond(KMSKEY_CONDITIONS.ready, 'False', 'DeletionScheduled', `Transit key ${o.transitKeyName} will be destroyed at ${rfc3339(new Date(scheduled))}; set spec.deletionPolicy: retain to cancel`),
  ]);
  if (o.now.getTime() < scheduled) {
    return { action: { kind: 'none' }, status: withSchedule, requeueAfterMs: scheduled - o.now.getTime() };
  }
  if (!o.transit.deletionAllowed) return { action: { kind: 'enableDeletion' }, status: withSchedule };
  return {
    action: { kind: 'deleteKey' },
    status: withSchedule,
    event: { type: 'Warning', reason: 'KeyDestroyed', message: `Transit key ${o.transitKeyName} destroyed after its deletion countdown; data it protected is unrecoverable` },
  };
}
