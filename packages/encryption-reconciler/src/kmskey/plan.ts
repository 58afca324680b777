import {
  type ConditionInput,
  type KmsKeySpec,
  type KmsKeyStatus,
  type TransitKey,
  type TransitKeyOwner,
  KMSKEY_CONDITIONS,
  kmsKeyId,
  parseKmsKeyInterval,
  rfc3339,
  setConditions,
  formatDuration,
} from '@kdc/shared';
import type { Ownership } from './ownership.ts';

// The KMSKey lifecycle as one pure function: given what the cluster and OpenBao say now, the
// single next change to make and the status to show. The reconciler only executes it. What decides
// anything here comes from OpenBao (the key, its ownership record) or from the spec; status is output.

export interface KmsKeyObservation {
  name: string;
  namespace: string;
  uid: string;
  generation: number;
  spec: KmsKeySpec;
  status: KmsKeyStatus | undefined;
  hasFinalizer: boolean;
  organization: string | undefined;
  /** `transit/` and the ownership registry (`kdc/`) are mounted in the organisation's OpenBao namespace. */
  mounts: { transit: boolean; registry: boolean };
  /** The Transit key this KMSKey resolves to (resolveOwnership). */
  transitKeyName: string;
  ownership: Ownership;
  /** null: OpenBao answered that the key does not exist. */
  transit: TransitKey | null;
  now: Date;
  /** The shortest rotation interval the platform allows for this key's purpose. */
  minRotationSeconds: number;
}

export type KmsKeyAction =
  | { kind: 'addFinalizer' }
  | { kind: 'ensureMount'; mount: 'transit' | 'registry' }
  | { kind: 'claim'; owner: TransitKeyOwner }
  | { kind: 'createKey'; type: string }
  | { kind: 'rotate' }
  | { kind: 'none' };

export interface KmsKeyPlan {
  action: KmsKeyAction;
  status: KmsKeyStatus;
  requeueAfterMs?: number;
  /** A reason for an Event when the action is worth telling people about. */
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

export type SpecCheck = { ok: true; intervalSeconds?: number } | { ok: false; reason: string; message: string };

export function checkSpec(spec: KmsKeySpec, minRotationSeconds = 1): SpecCheck {
  if (spec.exportable)
    return {
      ok: false,
      reason: 'ExportableNotAllowed',
      message: 'spec.exportable must be false: key material never leaves OpenBao',
    };
  if (!spec.rotation?.enabled) return { ok: true };
  if (!spec.rotation.interval)
    return {
      ok: false,
      reason: 'InvalidRotationInterval',
      message: 'spec.rotation.interval is required when rotation is enabled (e.g. 90d, 2160h, 1h30m)',
    };
  const parsed = parseKmsKeyInterval(spec.rotation.interval);
  if (!parsed.ok)
    return { ok: false, reason: 'InvalidRotationInterval', message: `spec.rotation.interval: ${parsed.error}` };
  if (parsed.seconds < 1)
    return { ok: false, reason: 'InvalidRotationInterval', message: 'spec.rotation.interval must be at least 1s' };
  // Every rotation is an OpenBao write and a requeue on a queue all tenants share: the platform
  // sets a floor (7d for etcd keys by default) so one tenant cannot keep both busy.
  if (parsed.seconds < minRotationSeconds) {
    return {
      ok: false,
      reason: 'RotationIntervalTooShort',
      message: `spec.rotation.interval ${spec.rotation.interval} is shorter than this platform allows for purpose ${spec.purpose} (${formatDuration(minRotationSeconds)}): choose at least ${formatDuration(minRotationSeconds)}`,
    };
  }
  return { ok: true, intervalSeconds: parsed.seconds };
}

const seconds = (unix: number) => new Date(unix * 1000);

function baseStatus(o: KmsKeyObservation): KmsKeyStatus {
  const t = o.transit;
  const { scheduledDeletion: _gone, ...previous } = o.status ?? {};
  return {
    ...previous,
    observedGeneration: o.generation,
    ...(t && o.ownership.kind === 'owned'
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
  return { ...status, conditions: setConditions(status.conditions, inputs, now) };
}

export function planKmsKey(o: KmsKeyObservation): KmsKeyPlan {
  const gen = o.generation;
  const cond = (
    type: string,
    status: 'True' | 'False' | 'Unknown',
    reason: string,
    message: string,
  ): ConditionInput => ({ type, status, reason, message, observedGeneration: gen });
  const notReady = (reason: string, message: string, action: KmsKeyAction = { kind: 'none' }): KmsKeyPlan => ({
    action,
    status: withConditions(status, o.now, [cond(KMSKEY_CONDITIONS.ready, 'False', reason, message)]),
  });
  let status = baseStatus(o);

  if (!o.hasFinalizer) return { action: { kind: 'addFinalizer' }, status };
  const spec = checkSpec(o.spec, o.minRotationSeconds);
  if (!spec.ok) return notReady(spec.reason, spec.message);
  for (const mount of ['transit', 'registry'] as const) {
    if (o.mounts[mount]) continue;
    return {
      action: { kind: 'ensureMount', mount },
      status: withConditions(status, o.now, [
        cond(
          KMSKEY_CONDITIONS.openBaoMounted,
          'False',
          'MountMissing',
          `enabling the ${mount === 'transit' ? 'transit/' : 'kdc/ ownership'} mount`,
        ),
      ]),
    };
  }
  status = withConditions(status, o.now, [
    cond(
      KMSKEY_CONDITIONS.openBaoMounted,
      'True',
      'Mounted',
      `transit/ is mounted in ${o.organization ? `namespace ${o.organization}` : 'the root namespace'}`,
    ),
  ]);

  const own = o.ownership;
  const owner = (origin: TransitKeyOwner['origin'], purpose: string): TransitKeyOwner => ({
    namespace: o.namespace,
    kmsKey: o.name,
    uid: o.uid,
    purpose,
    origin,
    claimedAt: rfc3339(o.now),
  });
  switch (own.kind) {
    case 'refused':
      return notReady(own.reason, own.message);
    case 'legacyAdoptable':
      return {
        ...notReady(
          'Claiming',
          `recording that Transit key ${o.transitKeyName} (first naming scheme) belongs to this KMSKey`,
          { kind: 'claim', owner: owner('legacy', o.spec.purpose) },
        ),
        event: {
          type: 'Normal',
          reason: 'LegacyKeyMigrated',
          message: `Transit key ${o.transitKeyName} was created for this KMSKey under the first naming scheme: ownership recorded, the key is kept`,
        },
      };
    case 'unclaimed':
      if (o.transit) {
        return notReady(
          'TransitKeyNotOwned',
          `Transit key ${o.transitKeyName} exists in OpenBao but was not created for this KMSKey, and a key is never adopted: a platform admin can import it with \`kubectl kdc keys adopt\`, or use another KMSKey name`,
        );
      }
      return notReady('Claiming', `reserving Transit key name ${o.transitKeyName}`, {
        kind: 'claim',
        owner: owner('created', o.spec.purpose),
      });
    case 'owned':
      break;
  }
  if (!o.transit) {
    return {
      ...notReady('Creating', `creating Transit key ${o.transitKeyName}`, {
        kind: 'createKey',
        type: o.spec.algorithm,
      }),
      event: {
        type: 'Normal',
        reason: 'KeyCreated',
        message: `Transit key ${o.transitKeyName} (${o.spec.algorithm}) created`,
      },
    };
  }
  if (own.owner.purpose !== o.spec.purpose) {
    return notReady(
      'PurposeChangeRefused',
      `this key was created for purpose ${own.owner.purpose}; a purpose cannot change once the key exists: set spec.purpose back to ${own.owner.purpose} or create a new KMSKey`,
    );
  }
  if (o.transit.type !== o.spec.algorithm) {
    return notReady(
      'AlgorithmMismatch',
      `the Transit key is ${o.transit.type}; an algorithm cannot change after creation: set spec.algorithm back to ${o.transit.type} or create a new KMSKey`,
    );
  }
  const ready = cond(
    KMSKEY_CONDITIONS.ready,
    'True',
    'KeyReady',
    `Transit key ${o.transitKeyName} version ${o.transit.latestVersion} is ready`,
  );

  if (!spec.intervalSeconds) {
    const { nextRotationTime: _none, ...rest } = status;
    return {
      action: { kind: 'none' },
      status: withConditions(rest, o.now, [
        ready,
        cond(KMSKEY_CONDITIONS.rotationScheduled, 'False', 'RotationDisabled', 'spec.rotation is not enabled'),
      ]),
    };
  }
  // The clock is the creation time of the latest version, kept by OpenBao: a restarted controller
  // computes the same due time, so it can neither rotate twice nor skip a rotation. A key this
  // KMSKey did not create (legacy, adopted) is first rotated one interval after it was claimed.
  const versionTime = (o.transit.versions[o.transit.latestVersion] ?? 0) * 1000;
  const clockStart =
    own.owner.origin === 'created' ? versionTime : Math.max(versionTime, Date.parse(own.owner.claimedAt) || 0);
  const due = clockStart + spec.intervalSeconds * 1000;
  if (o.now.getTime() >= due) {
    return {
      action: { kind: 'rotate' },
      status: withConditions(status, o.now, [ready]),
      event: {
        type: 'Normal',
        reason: 'KeyRotated',
        message: `rotating Transit key ${o.transitKeyName} past version ${o.transit.latestVersion} (interval ${o.spec.rotation!.interval})`,
      },
    };
  }
  return {
    action: { kind: 'none' },
    status: withConditions({ ...status, nextRotationTime: rfc3339(new Date(due)) }, o.now, [
      ready,
      cond(
        KMSKEY_CONDITIONS.rotationScheduled,
        'True',
        'Scheduled',
        `next rotation in ${formatDuration((due - o.now.getTime()) / 1000)} (every ${o.spec.rotation!.interval})`,
      ),
    ]),
    requeueAfterMs: due - o.now.getTime(),
  };
}
