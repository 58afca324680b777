import {
  ENCRYPTED_REASONS,
  KDC_CLUSTER_CONDITIONS as C,
  setConditions,
  type ConditionInput,
  type KdcClusterStatus,
  type KmsKeyStatus,
  type PluginKey,
  type TenantApiClient,
  type Validation,
} from '@kdc/shared';
import type { MigrationOutcome } from '../migration/reconcile.ts';
import { remaining } from '../migration/plan.ts';
import type { ReplicaView } from '../migration/rollout.ts';
import { disableComplete, nextProviderState, type DesiredProviders } from '../migration/providers.ts';
import type { ClusterAction } from '../plan.ts';
import { keySwitchCondition } from '../key-switch/keys.ts';

// The status of a KdcCluster as a pure function of one reconcile's outcome and observations.

export interface TenantObservation {
  /** TCP reports its control plane Ready. */
  controlPlaneReady: boolean;
  /** The tenant apiserver's /readyz/kms-providers answered ok. */
  kmsProvidersHealthy?: boolean;
  /** Every control-plane pod reports the kms-plugin sidecar ready. */
  sidecarReady?: boolean;
  /** Transit version behind the plugin's key_id (kms_plugin_key_version). */
  keyVersion?: number;
  /** Why the tenant side could not be observed, for the condition message. */
  problem?: string;
  /** The condition reason for `problem` when a more precise one than KMSPluginNotReady applies. */
  reason?: string;
  /** Each control-plane replica (config hash, sidecar, key_id): the migration waits for all of them. */
  replicas?: ReplicaView[];
  /** The tenant apiserver at the platform's address, with the admin credentials (re-writes go through it). */
  client?: TenantApiClient;
}

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
  now: Date;
}

export function clusterStatus(input: StatusInput): KdcClusterStatus {
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
      ? { type: C.encrypted, status: 'True', reason: lastEncrypted!.reason, message: lastEncrypted!.message, ...g }
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

/** Encrypted (SPEC 3.1, 5): True only when a scan of the stored rows shows none plaintext and none stale. */
function encryptedCondition(
  providers: Pick<DesiredProviders, 'encrypt' | 'decrypt' | 'retained'>,
  m: MigrationOutcome | undefined,
  previous: KdcClusterStatus | undefined,
): Omit<ConditionInput, 'type'> {
  const resources = providers.encrypt;
  if (!m) {
    // The migration did not run in this reconcile (a restore, say): what was proven last stands.
    const last = previous?.conditions?.find((c) => c.type === C.encrypted);
    return last
      ? { status: last.status, reason: last.reason, message: last.message }
      : { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: 'rows are not counted yet' };
  }
  const problem = m.problem ? ` (${m.problem})` : '';
  const r = m.record;
  if (r) {
    const progress = `${r.rewritten}/${r.total} objects re-written${r.pass > 1 ? ` (pass ${r.pass})` : ''}`;
    if (r.reason === 'decrypt')
      return {
        status: 'False',
        reason: ENCRYPTED_REASONS.decryptionInProgress,
        message: `decrypting every ${providers.decrypt.join(' and ')} row before KMS leaves them: ${progress}${problem}`,
      };
    if (r.reason === 'switch')
      return {
        status: 'False',
        reason: ENCRYPTED_REASONS.rewrapInProgress,
        message: `moving every row to the new key (key switch): ${progress}${problem}`,
      };
    return r.reason === 'rewrap'
      ? {
          status: 'False',
          reason: ENCRYPTED_REASONS.rewrapInProgress,
          message: `re-wrapping every row under the current key_id: ${progress}${problem}`,
        }
      : {
          status: 'False',
          reason: ENCRYPTED_REASONS.inProgress,
          message: `encrypting the rows written before: ${progress}${problem}`,
        };
  }
  const c = m.coverage;
  if (m.step.kind === 'wait')
    return { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: `${m.step.message}${problem}` };
  if (!c || m.step.kind === 'scan')
    return { status: 'False', reason: ENCRYPTED_REASONS.inProgress, message: `counting the stored rows${problem}` };
  const decrypting = providers.decrypt.filter((r) => !m.provenPlaintext.includes(r));
  if (decrypting.length)
    return {
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionInProgress,
      message: `counting the ${decrypting.join(' and ')} rows left to decrypt${problem}`,
    };
  if (!resources.length)
    return {
      status: 'False',
      reason: ENCRYPTED_REASONS.decryptionCompleted,
      message: `every row is proven plaintext; KMS is being detached${problem}`,
    };
  const left = remaining(providers, c);
  if (left.plaintext === 0 && left.stale === 0) {
    const retained = providers.retained.length
      ? ` (${providers.retained.join(', ')} stay${providers.retained.length === 1 ? 's' : ''} encrypted although dropped from spec.encryption.etcd.resources: their rows share the KMS provider, so they leave KMS only with the disable migration, disableRequested: true)`
      : '';
    return {
      status: 'True',
      reason: ENCRYPTED_REASONS.completed,
      message: `All resources encrypted: ${resources.join(', ')}${retained}`,
    };
  }
  return {
    status: 'False',
    reason: ENCRYPTED_REASONS.inProgress,
    message: `${left.stale} of ${c.total} rows are under an older key_id and automatic re-wrap is off: run kubectl kdc rewrap-etcd${problem}`,
  };
}

/** disableMigrationProgress (SPEC 2): 0 when requested, 1..99 while the decrypt pass runs; 100 is set once KMS is detached. */
function disableProgress(r: { reason: string; rewritten: number; total: number } | undefined): number {
  if (r?.reason !== 'decrypt' || r.total === 0) return 0;
  return Math.max(1, Math.min(99, Math.floor((r.rewritten / r.total) * 100)));
}

function migrationFields(
  m: MigrationOutcome,
  previous: KdcClusterStatus | undefined,
): Partial<NonNullable<KdcClusterStatus['encryption']>> {
  const { migration: _previous, ...kept } = previous?.encryption ?? {};
  return {
    ...(m.coverage ? { coverage: m.coverage } : {}),
    ...(m.record ? { migration: m.record } : { migration: undefined }),
    rewrapInProgress: m.record?.reason === 'rewrap' || m.record?.reason === 'switch',
    history: m.history,
    ...(m.lastCompletedAt
      ? { lastRewrapCompleted: m.lastCompletedAt }
      : kept.lastRewrapCompleted
        ? { lastRewrapCompleted: kept.lastRewrapCompleted }
        : {}),
  };
}

/**
 * ForceDisabled (SPEC 3.1, 5): True on every reconcile while KMS is detached by break-glass and the
 * annotation is still there. A cluster that never had it gets none; one that had it keeps a False.
 */
function forceDisabledCondition(
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
