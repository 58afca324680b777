import { parseKdcClusterSpec, type KdcClusterSpec } from '../api/kdccluster.ts';
import { KMSKEY_CONDITIONS } from '../api/kmskey.ts';
import { isConditionTrue, type Condition } from '../conditions.ts';
import { DAY_SECONDS, formatDuration, parseDuration } from '../duration.ts';
import { resolveBackupSettings } from './backup-settings.ts';
import { checkCronSchedule } from './cron.ts';
import { ANNOTATIONS, LABELS, MANAGED_BY_KDCCLUSTER, clusterNames } from '../names.ts';
import type { PlatformConfig, PlatformConfigResult } from './platform-config.ts';

// Reconcile-time validation of a KdcCluster (SPEC 3.1, 7). Pure: everything it needs is passed
// in. Both controllers that act on a KdcCluster (k8-manager and the OpenBao access reconciler)
// run it, so an invalid spec causes no write anywhere; each rule names what to change.

export interface Problem {
  reason: string;
  message: string;
}

export interface KmsKeyView {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { purpose?: string };
  status?: { conditions?: Condition[] };
}

/** The Kamaji DataStore `spec.dataStore` names: whether it exists and which namespaces the platform granted it to. */
export interface DataStoreFact {
  name: string;
  found: boolean;
  /** The DataStore's `kube-dc.com/allowed-namespaces` annotation (comma-separated names, or `*`). */
  allowedNamespaces?: string;
}

export interface ClusterFacts {
  namespace: string;
  name: string;
  spec: unknown;
  annotations: Record<string, string>;
  platform: PlatformConfigResult;
  /** KMSKeys in the cluster's namespace. */
  /** The KMSKeys of the namespace the spec names (gatherClusterFacts: only those). */
  kmsKeys: readonly KmsKeyView[];
  /** Other encrypted KdcClusters of the namespace and the etcd key each one uses (gatherClusterFacts: only those on this cluster's keyRef). */
  otherClusters: readonly { name: string; etcdKeyRef: string }[];
  /** Undefined when the spec names no DataStore (Kamaji's default DataStore is used). */
  dataStore?: DataStoreFact;
  /** Name of the KamajiControlPlane owning the TCP, if any. */
  kamajiControlPlaneOwner?: string;
  /** The TCP carries our encryption fields right now. */
  attached: boolean;
  /** The controller's clock: a break-glass confirmation counts only while it is recent. */
  now: Date;
}

export type Validation =
  | {
      ok: true;
      spec: KdcClusterSpec;
      platform?: PlatformConfig;
      etcdKeyRef?: string;
      backupKeyRef?: string;
      warnings: Problem[];
      /** Detach KMS now without the disable migration: a recent break-glass confirmation on an attached, disabled cluster. */
      forceDisable: boolean;
      /** KMS is not attached, encryption is off, and the break-glass annotation is still there: say so on every reconcile. */
      forceDisabled: boolean;
    }
  | { ok: false; errors: Problem[]; warnings: Problem[] };

/** A break-glass confirmation is honoured this long after the time it names (SPEC 5). */
export const FORCE_DISABLE_MAX_AGE_MS = 60 * 60 * 1000;
/** Clocks differ: a confirmation up to this far ahead of the controller's clock counts as now. */
export const FORCE_DISABLE_CLOCK_SKEW_MS = 5 * 60 * 1000;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i;

export const MIN_KEK_ROTATION_SECONDS = 7 * DAY_SECONDS;
export const MAX_KEK_ROTATION_SECONDS = 730 * DAY_SECONDS;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const VERSION = /^v\d+\.\d+\.\d+$/;
/**
 * Every name derived from a cluster must be valid: `<cluster>-cp` becomes Kamaji's Service (a
 * DNS-1035 label: starts with a letter), `<cluster>-etcd-backup` a CronJob (at most 52
 * characters), and kdc-backup stores backups under `<cluster>/`.
 */
export const MAX_CLUSTER_NAME_LENGTH = 40;
const CLUSTER_NAME = new RegExp(`^[a-z]([-a-z0-9]{0,${MAX_CLUSTER_NAME_LENGTH - 2}}[a-z0-9])?$`);

export function validateCluster(facts: ClusterFacts): Validation {
  const parsed = parseKdcClusterSpec(facts.spec);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
    return {
      ok: false,
      errors: [{ reason: 'InvalidSpec', message: `the spec cannot be read: ${issues}` }],
      warnings: [],
    };
  }
  const spec = parsed.data;
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const etcd = spec.encryption?.etcd;
  const enabled = etcd?.enabled === true;

  if (!CLUSTER_NAME.test(facts.name)) {
    errors.push({
      reason: 'ClusterNameInvalid',
      message: `cluster name "${facts.name}" cannot be used: the objects made for it need a name of at most ${MAX_CLUSTER_NAME_LENGTH} lowercase letters, digits and '-', starting with a letter and ending with a letter or digit; re-create the cluster under such a name`,
    });
  }
  errors.push(...dataStoreProblems(facts));
  if (!VERSION.test(spec.version))
    errors.push({
      reason: 'VersionInvalid',
      message: `spec.version "${spec.version}" is not a Kubernetes version: write it as vMAJOR.MINOR.PATCH, e.g. v1.35.0`,
    });
  errors.push(...backupProblems(facts.namespace, facts.name, spec));

  const confirmed = facts.annotations[ANNOTATIONS.forceDisableConfirmed];
  let forceDisable = false;
  if (!enabled && facts.attached) {
    if (confirmed === undefined) {
      errors.push({
        reason: 'DisableRequiresMigration',
        message:
          'encryption.etcd.enabled=false would detach KMS while rows are still encrypted: set enabled back to true and use disableRequested: true for the safe disable migration',
      });
    } else {
      const problem = forceDisableProblem(confirmed, facts.now);
      if (problem) errors.push(problem);
      else forceDisable = true;
    }
  }
  const forceDisabled = !enabled && !facts.attached && confirmed !== undefined;
  if ((enabled || facts.attached) && facts.kamajiControlPlaneOwner) {
    errors.push({
      reason: 'ManagedByKamajiControlPlane',
      message: `the TenantControlPlane is owned by KamajiControlPlane ${facts.kamajiControlPlaneOwner}, which would overwrite the KMS fields: manage encryption without Cluster API or remove that owner`,
    });
  }
  if (!enabled)
    return errors.length ? { ok: false, errors, warnings } : { ok: true, spec, warnings, forceDisable, forceDisabled };

  if (!facts.platform.ok) errors.push(...facts.platform.missing);
  const keys = new Map(facts.kmsKeys.map((k) => [k.metadata.name, k]));
  const explicit = etcd.keyRef;
  const etcdKeyRef = explicit || clusterNames(facts.name).autoEtcdKey;
  if (explicit) {
    errors.push(...keyProblems('keyRef', explicit, keys.get(explicit), ['etcd']));
    const users = facts.otherClusters.filter((c) => c.etcdKeyRef === explicit).map((c) => c.name);
    if (users.length && facts.annotations[ANNOTATIONS.allowSharedEtcdKey] === undefined) {
      errors.push({
        reason: 'KeyRefInUse',
        message: `KMSKey ${explicit} is already the etcd key of ${users.join(', ')}: use a key of its own, or annotate this cluster with ${ANNOTATIONS.allowSharedEtcdKey} to share it knowingly`,
      });
    }
    if (etcd.kekRotation) {
      warnings.push({
        reason: 'KEKRotationManagedExternally',
        message: `kekRotation is ignored: the rotation of KMSKey ${explicit} is set on that KMSKey, which this cluster does not manage; remove kekRotation or drop keyRef`,
      });
    }
  } else {
    const auto = keys.get(etcdKeyRef);
    const ours =
      auto?.metadata.labels?.[LABELS.kdcCluster] === facts.name &&
      auto?.metadata.labels?.[LABELS.managedBy] === MANAGED_BY_KDCCLUSTER;
    if (auto && !ours) {
      errors.push({
        reason: 'AutoKeyConflict',
        message: `a KMSKey named ${etcdKeyRef} exists but was not created for this cluster: set keyRef: ${etcdKeyRef} to use it, or rename that key`,
      });
    } else if (auto?.metadata.deletionTimestamp) {
      errors.push({
        reason: 'KeyRefScheduledForDeletion',
        message: `KMSKey ${etcdKeyRef} is being deleted: wait until it is gone, then reconcile again to get a new one`,
      });
    }
    errors.push(...rotationProblems(spec));
  }
  const backupRef = etcd.backup?.keyRef;
  if (backupRef && backupRef !== etcdKeyRef)
    errors.push(...keyProblems('backup.keyRef', backupRef, keys.get(backupRef), ['etcd', 'backup']));

  if (errors.length) return { ok: false, errors, warnings };
  return {
    ok: true,
    spec,
    platform: facts.platform.ok ? facts.platform.config : undefined,
    etcdKeyRef,
    backupKeyRef: backupRef || etcdKeyRef,
    warnings,
    forceDisable,
    forceDisabled: false,
  };
}

/**
 * Why a break-glass confirmation does not count, or undefined when it does: an RFC 3339 time at
 * most an hour old. A leftover annotation from an earlier incident must never allow a later
 * detach, and a time in the future would keep it valid for ever.
 */
export function forceDisableProblem(confirmed: string, now: Date): Problem | undefined {
  const annotation = `annotation ${ANNOTATIONS.forceDisableConfirmed}="${confirmed.slice(0, 64)}"`;
  const fix =
    'if the encrypted rows are known to be unrecoverable, set it to the current time (date -u +%Y-%m-%dT%H:%M:%SZ); otherwise set enabled back to true and use disableRequested: true';
  const at = RFC3339.test(confirmed) ? Date.parse(confirmed) : Number.NaN;
  if (Number.isNaN(at))
    return {
      reason: 'ForceDisableAnnotationInvalid',
      message: `${annotation} is not an RFC 3339 time: write the current time, e.g. 2026-01-31T12:00:00Z`,
    };
  const age = now.getTime() - at;
  if (age > FORCE_DISABLE_MAX_AGE_MS) {
    return {
      reason: 'ForceDisableAnnotationStale',
      message: `${annotation} is ${formatDuration(Math.floor(age / 1000))} old; break-glass is honoured only within 1h of the time it names: ${fix}`,
    };
  }
  if (-age > FORCE_DISABLE_CLOCK_SKEW_MS) {
    return {
      reason: 'ForceDisableAnnotationInFuture',
      message: `${annotation} is ${formatDuration(Math.ceil(-age / 1000))} ahead of the controller's clock, so it would stay valid too long: ${fix}`,
    };
  }
  return undefined;
}

function keyProblems(field: string, ref: string, key: KmsKeyView | undefined, purposes: readonly string[]): Problem[] {
  const prefix = field === 'keyRef' ? 'KeyRef' : 'BackupKeyRef';
  if (!DNS_LABEL.test(ref)) {
    return [
      {
        reason: `${prefix}Invalid`,
        message: `${field} "${ref}" is not a KMSKey name: name a KMSKey in this namespace (keys in other namespaces cannot be used)`,
      },
    ];
  }
  if (!key)
    return [
      {
        reason: `${prefix}NotFound`,
        message: `${field}: KMSKey ${ref} does not exist in this namespace: create it (purpose ${purposes.join(' or ')}) or fix the name`,
      },
    ];
  if (key.metadata.deletionTimestamp) {
    return [
      {
        reason: `${prefix}ScheduledForDeletion`,
        message: `${field}: KMSKey ${ref} is scheduled for deletion: cancel it (deletionPolicy: retain) or choose another key`,
      },
    ];
  }
  const purpose = key.spec?.purpose ?? 'application';
  if (!purposes.includes(purpose)) {
    return [
      {
        reason: `${prefix}WrongPurpose`,
        message: `${field}: KMSKey ${ref} has purpose ${purpose}; a cluster needs purpose ${purposes.join(' or ')}: choose another key`,
      },
    ];
  }
  if (!isConditionTrue(key.status?.conditions, KMSKEY_CONDITIONS.ready)) {
    return [
      {
        reason: `${prefix}NotReady`,
        message: `${field}: KMSKey ${ref} is not Ready yet: see kubectl describe kkey ${ref}`,
      },
    ];
  }
  return [];
}

function rotationProblems(spec: KdcClusterSpec): Problem[] {
  const rotation = spec.encryption?.etcd.kekRotation;
  if (!rotation?.enabled) return [];
  if (!rotation.interval)
    return [
      {
        reason: 'KEKRotationIntervalMissing',
        message: 'kekRotation.enabled is true but no interval is set: add kekRotation.interval, e.g. 90d',
      },
    ];
  const parsed = parseDuration(rotation.interval);
  if (!parsed.ok) return [{ reason: 'KEKRotationIntervalInvalid', message: `kekRotation.interval: ${parsed.error}` }];
  if (parsed.seconds < MIN_KEK_ROTATION_SECONDS || parsed.seconds > MAX_KEK_ROTATION_SECONDS) {
    return [
      {
        reason: 'KEKRotationIntervalOutOfRange',
        message: `kekRotation.interval ${rotation.interval} is outside 7d..730d: choose a value in that range, e.g. 90d`,
      },
    ];
  }
  const backup = spec.backup;
  if ((backup?.enabled ?? true) && parsed.seconds < (backup?.retentionDays ?? 7) * DAY_SECONDS) {
    const retention = backup?.retentionDays ?? 7;
    return [
      {
        reason: 'KEKRotationIntervalBelowRetention',
        message: `kekRotation.interval ${rotation.interval} is shorter than backup.retentionDays (${retention}d): use at least ${formatDuration(retention * DAY_SECONDS)} or shorten the retention`,
      },
    ];
  }
  return [];
}

function backupProblems(namespace: string, cluster: string, spec: KdcClusterSpec): Problem[] {
  const backup = spec.backup;
  if (!backup || backup.enabled === false) return [];
  const problems: Problem[] = [];
  const cron = checkCronSchedule(backup.schedule);
  if (!cron.ok) {
    problems.push({
      reason: 'BackupScheduleInvalid',
      message: `backup.schedule "${backup.schedule.slice(0, 100)}" is not a schedule a CronJob accepts (${cron.error}): write minute hour day month weekday, e.g. "0 2 * * *"`,
    });
  }
  const settings = resolveBackupSettings(namespace, cluster, spec);
  if (settings && !settings.ok) problems.push({ reason: settings.reason, message: settings.message });
  return problems;
}

/**
 * A tenant may only put its control plane on a DataStore the platform granted to its namespace:
 * another tenant's dedicated etcd would mix both tenants' rows and block the victim's restores.
 */
function dataStoreProblems(facts: ClusterFacts): Problem[] {
  const ds = facts.dataStore;
  if (!ds) return [];
  const grant = `annotate it ${ANNOTATIONS.allowedNamespaces}=${facts.namespace} (or "*" for a shared pool)`;
  if (!ds.found)
    return [
      {
        reason: 'DataStoreNotFound',
        message: `spec.dataStore: DataStore ${ds.name} does not exist: remove spec.dataStore for the platform's default, or ask the platform operator for one`,
      },
    ];
  if (!dataStoreGranted(ds.allowedNamespaces, facts.namespace)) {
    return [
      {
        reason: 'DataStoreNotAllowed',
        message: `spec.dataStore: DataStore ${ds.name} is not granted to namespace ${facts.namespace}: remove spec.dataStore for the platform's default, or ask the platform operator to ${grant}`,
      },
    ];
  }
  return [];
}

export function dataStoreGranted(allowed: string | undefined, namespace: string): boolean {
  return (allowed ?? '')
    .split(',')
    .map((n) => n.trim())
    .some((n) => n === '*' || n === namespace);
}
