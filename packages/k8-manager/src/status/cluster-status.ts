import {
  ENCRYPTED_REASONS,
  KDC_CLUSTER_CONDITIONS as C,
  setConditions,
  type ConditionInput,
  type KdcClusterStatus,
  type KmsKeyStatus,
  type PluginKey,
  type Validation,
} from '@kdc/shared';
import type { BackupResult } from '../backup/reconcile.ts';
import type { MigrationOutcome } from '../migration/reconcile.ts';
import { disableComplete, nextProviderState, type DesiredProviders } from '../migration/providers.ts';
import type { ClusterAction } from '../plan.ts';
import { keySwitchCondition } from '../key-switch/keys.ts';
import type { RestoreResult } from '../restore/reconcile.ts';
import type { TenantObservation } from '../tenant/observe-tenant.ts';
import { forceDisabledCondition } from './break-glass.ts';
import { disableProgress, encryptedCondition, migrationFields } from './encrypted.ts';

// The status of a KdcCluster as a pure function of one reconcile's outcome and observations, the
// backup and restore parts included, so that what a reconcile writes is decided in one place (the
// restore's own compare-and-swap of status.restore, which its state machine needs, is the only
// write outside it).

export interface StatusInput {
  generation: number;
  previous: KdcClusterStatus | undefined;
  validation: Validation;
  /** The last action of the pass: `done`, `waitForPreflight` or `invalid`. */
  outcome: ClusterAction;
  etcdKey?: { spec?: { rotation?: { enabled?: boolean } }; status?: KmsKeyStatus };
  tenant?: TenantObservation;
  /** What the migration step of this reconcile saw and did (absent when it did not run). */
  migration?: MigrationOutcome;
  /** What the written EncryptionConfiguration encrypts and decrypts (absent when encryption is off). */
  providers?: DesiredProviders;
  /** The TenantControlPlane runs the KMS plugin after this reconcile. */
  attached?: boolean;
  /** KMS is detached by break-glass (in this reconcile or before) and the annotation is still there. */
  forceDisabled?: boolean;
  /** The EncryptionConfiguration hash on the TCP's pod template (what every replica must run). */
  configHash?: string;
  /** The plugin instances after this reconcile (plugin-keys.ts), and why the spec's key is not applied, if it is not. */
  keys?: { current: readonly PluginKey[]; refused?: string };
  /** What the backup half made of this reconcile (absent when it did not run). */
  backup?: Pick<BackupResult, 'condition' | 'fields'>;
  /** What the restore made of this reconcile (absent when it did not run); no condition when none was ever requested. */
  restore?: Pick<RestoreResult, 'condition' | 'fields'>;
  now: Date;
}

export function clusterStatus(input: StatusInput): KdcClusterStatus {
  const status = encryptionStatus(input);
  const { backup, restore } = input;
  if (!backup && !restore) return status;
  const g = { observedGeneration: input.generation };
  return {
    ...status,
    ...backup?.fields,
    ...restore?.fields,
    conditions: setConditions(
      status.conditions,
      [
        ...(backup ? [{ ...backup.condition, ...g }] : []),
        ...(restore?.condition ? [{ ...restore.condition, ...g }] : []),
      ],
      input.now,
    ),
  };
}

/** Everything but the backup and restore parts: the spec's verdict, the plugin, the rows, the keys. */
function encryptionStatus(input: StatusInput): KdcClusterStatus {
  const { validation: v, generation, previous } = input;
  const g = { observedGeneration: generation };
  const conditions: ConditionInput[] = [];
  const warning = v.warnings.find((w) => w.reason === 'KEKRotationManagedExternally');
  conditions.push(
    warning
      ? { type: C.kekRotationManagedExternally, status: 'True', ...warning, ...g }
      : {
          type: C.kekRotationManagedExternally,
          status: 'False',
          reason: 'NotApplicable',
          message: 'rotation follows the cluster spec or is off',
          ...g,
        },
  );

  if (!v.ok) {
    const [first] = v.errors;
    conditions.push({
      type: C.encryptionConfigError,
      status: 'True',
      reason: first!.reason,
      message: v.errors.map((e) => e.message).join('; '),
      ...g,
    });
    conditions.push({
      type: C.ready,
      status: 'False',
      reason: first!.reason,
      message: `the spec is refused and nothing was changed: ${first!.message}`,
      ...g,
    });
    // Everything else keeps describing the cluster as it still runs.
    return {
      ...previous,
      phase: 'Invalid',
      observedGeneration: generation,
      conditions: setConditions(previous?.conditions, conditions, input.now),
    };
  }
  conditions.push({
    type: C.encryptionConfigError,
    status: 'False',
    reason: 'Valid',
    message: 'the encryption spec is valid and the platform prerequisites are met',
    ...g,
  });
  const breakGlass = forceDisabledCondition(input.forceDisabled === true, previous);
  if (breakGlass) conditions.push({ ...breakGlass, ...g });
  const keySwitch = input.keys ? keySwitchCondition(input.keys.current, input.keys.refused, previous) : undefined;
  if (keySwitch) conditions.push({ ...keySwitch, ...g });
  const pluginKeys = input.keys?.current.length
    ? { pluginKeys: input.keys.current.map((k) => ({ ...k })) }
    : { pluginKeys: undefined };
  const writerKeyRef = input.keys?.current.find((k) => k.mode === 'write')?.keyRef;
  const resolvedKeyRef = v.ok ? (writerKeyRef ?? v.etcdKeyRef) : undefined;

  const enabled = v.spec.encryption?.etcd.enabled === true;
  if (!enabled) {
    conditions.push({
      type: C.encryptionAvailable,
      status: 'False',
      reason: ENCRYPTED_REASONS.disabled,
      message: 'etcd encryption is not enabled for this cluster',
      ...g,
    });
    conditions.push({
      type: C.encrypted,
      status: 'False',
      reason: ENCRYPTED_REASONS.disabled,
      message: 'etcd encryption is not enabled for this cluster',
      ...g,
    });
    conditions.push(
      input.forceDisabled
        ? {
            type: C.ready,
            status: 'True',
            reason: 'ForceDisabled',
            message:
              'KMS was detached by break-glass without the disable migration: rows still encrypted are unreadable',
            ...g,
          }
        : {
            type: C.ready,
            status: 'True',
            reason: 'Reconciled',
            message: 'the control plane is configured (no etcd encryption)',
            ...g,
          },
    );
    const { encryption: _dropped, ...rest } = previous ?? {};
    return {
      ...rest,
      phase: 'Unencrypted',
      observedGeneration: generation,
      conditions: setConditions(previous?.conditions, conditions, input.now),
    };
  }

  const disableRequested = v.spec.encryption?.etcd.disableRequested === true;
  const providers = input.providers;
  const providerState = providers ? nextProviderState(providers, input.migration?.provenPlaintext ?? []) : undefined;
  if (providers && disableComplete(providers, disableRequested) && !input.attached) {
    // The disable migration proved every row plaintext and the plugin is gone: one edit left.
    const done =
      'every row is proven plaintext and KMS is detached: set spec.encryption.etcd.enabled: false to finish (or disableRequested: false to encrypt again)';
    conditions.push({
      type: C.encryptionAvailable,
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionCompleted,
      message: 'KMS is detached after the disable migration',
      ...g,
    });
    conditions.push({
      type: C.encrypted,
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionCompleted,
      message: done,
      ...g,
    });
    conditions.push({
      type: C.ready,
      status: 'True',
      reason: ENCRYPTED_REASONS.decryptionCompleted,
      message: done,
      ...g,
    });
    const { migration: _gone, ...kept } = previous?.encryption ?? {};
    return {
      ...previous,
      phase: 'Decrypted',
      observedGeneration: generation,
      conditions: setConditions(previous?.conditions, conditions, input.now),
      encryption: {
        ...kept,
        resolvedKeyRef,
        resolvedBackupKeyRef: v.backupKeyRef,
        kmsPluginReady: false,
        rewrapInProgress: false,
        disableMigrationProgress: 100,
        ...providerState,
        pluginKeys: undefined,
      },
    };
  }

  const previousAvailable = previous?.conditions?.find((c) => c.type === C.encryptionAvailable);
  if (
    input.outcome.kind === 'waitForPreflight' &&
    !input.outcome.failed &&
    input.attached &&
    previousAvailable?.status === 'True'
  ) {
    // A new generation waits for the KMS pre-flight before it is applied; the running control
    // plane still encrypts as it did, so this is not a failure.
    const previousEncrypted = previous?.conditions?.find((c) => c.type === C.encrypted);
    conditions.push({
      type: C.encryptionAvailable,
      status: 'True',
      reason: previousAvailable.reason,
      message: previousAvailable.message,
      ...g,
    });
    if (previousEncrypted)
      conditions.push({
        type: C.encrypted,
        status: previousEncrypted.status,
        reason: previousEncrypted.reason,
        message: previousEncrypted.message,
        ...g,
      });
    conditions.push({
      type: C.ready,
      status: 'True',
      reason: 'EncryptionAvailable',
      message: `the control plane encrypts etcd through the KMS plugin; generation ${generation} is applied once the KMS pre-flight of the OpenBao policy and role passed`,
      ...g,
    });
    return {
      ...previous,
      phase: 'Ready',
      observedGeneration: generation,
      conditions: setConditions(previous?.conditions, conditions, input.now),
      ...(previous?.encryption ? { encryption: { ...previous.encryption, ...pluginKeys } } : {}),
    };
  }

  const tenant = input.tenant;
  const pluginReady = Boolean(tenant?.controlPlaneReady && tenant.kmsProvidersHealthy && tenant.sidecarReady !== false);
  const waiting = input.outcome.kind === 'waitForPreflight' ? input.outcome.message : undefined;
  const availability: ConditionInput = waiting
    ? { type: C.encryptionAvailable, status: 'False', reason: 'WaitingForPreflight', message: waiting, ...g }
    : pluginReady
      ? {
          type: C.encryptionAvailable,
          status: 'True',
          reason: 'KMSPluginReady',
          message: 'the tenant apiserver reports its KMS provider healthy and the plugin sidecar is ready',
          ...g,
        }
      : {
          type: C.encryptionAvailable,
          status: 'False',
          reason: tenant?.reason ?? (tenant?.controlPlaneReady ? 'KMSPluginNotReady' : 'WaitingForControlPlane'),
          message: tenant?.problem ?? 'waiting for the control plane with the KMS plugin to become ready',
          ...g,
        };
  conditions.push(availability);
  const migration = input.migration;
  // Encrypted describes the stored rows. Pods rolling for a change that leaves the config as it
  // was (a new plugin image or OpenBao URL) or a plugin not ready change no row: what the last
  // scan proved under this very config still holds until a scan says otherwise.
  const lastEncrypted = previous?.conditions?.find((c) => c.type === C.encrypted);
  const lastScan = migration?.coverage ?? previous?.encryption?.coverage;
  const proofHolds =
    lastEncrypted?.status === 'True' &&
    lastEncrypted.reason === ENCRYPTED_REASONS.completed &&
    input.configHash !== undefined &&
    lastScan?.configHash === input.configHash &&
    !migration?.record &&
    (!pluginReady || migration?.step.kind === 'wait');
  conditions.push(
    proofHolds
      ? { type: C.encrypted, status: 'True', reason: lastEncrypted.reason, message: lastEncrypted.message, ...g }
      : pluginReady
        ? {
            type: C.encrypted,
            ...encryptedCondition(
              providers ?? { encrypt: [...v.spec.encryption!.etcd.resources], decrypt: [], retained: [], shared: [] },
              migration,
              previous,
            ),
            ...g,
          }
        : {
            type: C.encrypted,
            status: 'False',
            reason: ENCRYPTED_REASONS.inProgress,
            message: `waiting for the KMS plugin before rows are encrypted${migration?.step.kind === 'wait' ? `: ${migration.step.message}` : ''}`,
            ...g,
          },
  );
  conditions.push(
    pluginReady
      ? {
          type: C.ready,
          status: 'True',
          reason: 'EncryptionAvailable',
          message: 'the control plane encrypts etcd through the KMS plugin',
          ...g,
        }
      : { type: C.ready, status: 'False', reason: availability.reason, message: availability.message, ...g },
  );

  const key = input.etcdKey;
  const rotation = key?.status
    ? {
        enabled: Boolean(key.spec?.rotation?.enabled),
        currentVersion: key.status.currentVersion,
        lastRotatedTime: key.status.lastRotatedTime,
        nextRotationTime: key.status.nextRotationTime,
        minDecryptionVersion: key.status.minDecryptionVersion,
      }
    : previous?.encryption?.kekRotation;
  return {
    ...previous,
    phase: waiting ? 'WaitingForPreflight' : pluginReady ? 'Ready' : 'Provisioning',
    observedGeneration: generation,
    conditions: setConditions(previous?.conditions, conditions, input.now),
    encryption: {
      ...previous?.encryption,
      resolvedKeyRef,
      resolvedBackupKeyRef: v.backupKeyRef,
      kmsPluginReady: pluginReady,
      ...pluginKeys,
      ...(tenant?.keyVersion !== undefined ? { currentKeyVersion: tenant.keyVersion } : {}),
      ...(rotation ? { kekRotation: rotation } : {}),
      ...(migration ? migrationFields(migration, previous) : {}),
      ...providerState,
      disableMigrationProgress: disableRequested
        ? disableProgress(migration?.record ?? previous?.encryption?.migration)
        : null,
    },
  };
}
