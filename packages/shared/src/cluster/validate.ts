import { kdcClusterSpecSchema, type KdcClusterSpec } from '../api/kdccluster.ts';
import { KMSKEY_CONDITIONS } from '../api/kmskey.ts';
import { isConditionTrue, type Condition } from '../conditions.ts';
import { DAY_SECONDS, formatDuration, parseDuration } from '../duration.ts';
import { resolveBackupSettings } from './backup-settings.ts';
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
  status?: { conditions?: Condition[]; scheduledDeletion?: string };
}

export interface ClusterFacts {
  namespace: string;
  name: string;
  spec: unknown;
  annotations: Record<string, string>;
  platform: PlatformConfigResult;
  /** KMSKeys in the cluster's namespace. */
  kmsKeys: readonly KmsKeyView[];
  /** Other encrypted KdcClusters of the namespace and the etcd key each one uses. */
  otherClusters: readonly { name: string; etcdKeyRef: string }[];
  /**
   * Namespace of an older encrypted KdcCluster with the same name in the same OpenBao namespace
   * (organisation): OpenBao policy and role names (`tcp-<cluster>`) would collide.
   */
  nameTakenBy?: string;
  /** Name of the KamajiControlPlane owning the TCP, if any. */
  kamajiControlPlaneOwner?: string;
  /** The TCP carries our encryption fields right now. */
  attached: boolean;
}

export type Validation =
  | { ok: true; spec: KdcClusterSpec; platform?: PlatformConfig; etcdKeyRef?: string; backupKeyRef?: string; warnings: Problem[]; forceDisable: boolean }
  | { ok: false; errors: Problem[]; warnings: Problem[] };

export const MIN_KEK_ROTATION_SECONDS = 7 * DAY_SECONDS;
export const MAX_KEK_ROTATION_SECONDS = 730 * DAY_SECONDS;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const VERSION = /^v\d+\.\d+\.\d+$/;
const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

export function validateCluster(facts: ClusterFacts): Validation {
  const parsed = kdcClusterSpecSchema.safeParse(facts.spec);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
    return { ok: false, errors: [{ reason: 'InvalidSpec', message: `the spec cannot be read: ${issues}` }], warnings: [] };
  }
  const spec = parsed.data;
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const etcd = spec.encryption?.etcd;
  const enabled = etcd?.enabled === true;

  if (!VERSION.test(spec.version)) errors.push({ reason: 'VersionInvalid', message: `spec.version "${spec.version}" is not a Kubernetes version: write it as vMAJOR.MINOR.PATCH, e.g. v1.35.0` });
  errors.push(...backupProblems(facts.namespace, facts.name, spec));

  let forceDisable = false;
  if (!enabled && facts.attached) {
    const confirmed = facts.annotations[ANNOTATIONS.forceDisableConfirmed];
    if (confirmed === undefined) {
      errors.push({
        reason: 'DisableRequiresMigration',
        message: 'encryption.etcd.enabled=false would detach KMS while rows are still encrypted: set enabled back to true and use disableRequested: true for the safe disable migration',
      });
    } else if (Number.isNaN(Date.parse(confirmed)) || !/^\d{4}-\d\d-\d\dT/.test(confirmed)) {
      errors.push({ reason: 'ForceDisableAnnotationInvalid', message: `annotation ${ANNOTATIONS.forceDisableConfirmed}="${confirmed}" is not an RFC 3339 time: write the current time, e.g. 2026-01-31T12:00:00Z` });
    } else {
      forceDisable = true;
    }
  }
  if ((enabled || facts.attached) && facts.kamajiControlPlaneOwner) {
    errors.push({
      reason: 'ManagedByKamajiControlPlane',
      message: `the TenantControlPlane is owned by KamajiControlPlane ${facts.kamajiControlPlaneOwner}, which would overwrite the KMS fields: manage encryption without Cluster API or remove that owner`,
    });
  }
  if (!enabled) return errors.length ? { ok: false, errors, warnings } : { ok: true, spec, warnings, forceDisable };

  if (!facts.platform.ok) errors.push(...facts.platform.missing);
  if (facts.nameTakenBy) {
    errors.push({
      reason: 'ClusterNameConflict',
      message: `an encrypted cluster named ${facts.name} already exists in namespace ${facts.nameTakenBy} of the same organisation, and OpenBao policy and role names (tcp-${facts.name}) are per organisation: give this cluster another name`,
    });
  }
  const keys = new Map(facts.kmsKeys.map((k) => [k.metadata.name, k]));
  const explicit = etcd!.keyRef;
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
    if (etcd!.kekRotation) {
      warnings.push({
        reason: 'KEKRotationManagedExternally',
        message: `kekRotation is ignored: the rotation of KMSKey ${explicit} is set on that KMSKey, which this cluster does not manage; remove kekRotation or drop keyRef`,
      });
    }
  } else {
    const auto = keys.get(etcdKeyRef);
    const ours = auto?.metadata.labels?.[LABELS.kdcCluster] === facts.name && auto?.metadata.labels?.[LABELS.managedBy] === MANAGED_BY_KDCCLUSTER;
    if (auto && !ours) {
      errors.push({ reason: 'AutoKeyConflict', message: `a KMSKey named ${etcdKeyRef} exists but was not created for this cluster: set keyRef: ${etcdKeyRef} to use it, or rename that key` });
    } else if (auto?.metadata.deletionTimestamp) {
      errors.push({ reason: 'KeyRefScheduledForDeletion', message: `KMSKey ${etcdKeyRef} is being deleted: wait until it is gone, then reconcile again to get a new one` });
    }
    errors.push(...rotationProblems(spec));
  }
  const backupRef = etcd!.backup?.keyRef;
  if (backupRef && backupRef !== etcdKeyRef) errors.push(...keyProblems('backup.keyRef', backupRef, keys.get(backupRef), ['etcd', 'backup']));

  if (errors.length) return { ok: false, errors, warnings };
  return { ok: true, spec, platform: facts.platform.ok ? facts.platform.config : undefined, etcdKeyRef, backupKeyRef: backupRef || etcdKeyRef, warnings, forceDisable };
}

function keyProblems(field: string, ref: string, key: KmsKeyView | undefined, purposes: readonly string[]): Problem[] {
  const prefix = field === 'keyRef' ? 'KeyRef' : 'BackupKeyRef';
  if (!DNS_LABEL.test(ref)) {
    return [{ reason: `${prefix}Invalid`, message: `${field} "${ref}" is not a KMSKey name: name a KMSKey in this namespace (keys in other namespaces cannot be used)` }];
  }
  if (!key) return [{ reason: `${prefix}NotFound`, message: `${field}: KMSKey ${ref} does not exist in this namespace: create it (purpose ${purposes.join(' or ')}) or fix the name` }];
  if (key.metadata.deletionTimestamp || key.status?.scheduledDeletion) {
    return [{ reason: `${prefix}ScheduledForDeletion`, message: `${field}: KMSKey ${ref} is scheduled for deletion: cancel it (deletionPolicy: retain) or choose another key` }];
  }
  const purpose = key.spec?.purpose ?? 'application';
  if (!purposes.includes(purpose)) {
    return [{ reason: `${prefix}WrongPurpose`, message: `${field}: KMSKey ${ref} has purpose ${purpose}; a cluster needs purpose ${purposes.join(' or ')}: choose another key` }];
  }
  if (!isConditionTrue(key.status?.conditions, KMSKEY_CONDITIONS.ready)) {
    return [{ reason: `${prefix}NotReady`, message: `${field}: KMSKey ${ref} is not Ready yet: see kubectl describe kkey ${ref}` }];
  }
  return [];
}

function rotationProblems(spec: KdcClusterSpec): Problem[] {
  const rotation = spec.encryption?.etcd.kekRotation;
  if (!rotation?.enabled) return [];
  if (!rotation.interval) return [{ reason: 'KEKRotationIntervalMissing', message: 'kekRotation.enabled is true but no interval is set: add kekRotation.interval, e.g. 90d' }];
  const parsed = parseDuration(rotation.interval);
  if (!parsed.ok) return [{ reason: 'KEKRotationIntervalInvalid', message: `kekRotation.interval: ${parsed.error}` }];
  if (parsed.seconds < MIN_KEK_ROTATION_SECONDS || parsed.seconds > MAX_KEK_ROTATION_SECONDS) {
    return [{ reason: 'KEKRotationIntervalOutOfRange', message: `kekRotation.interval ${rotation.interval} is outside 7d..730d: choose a value in that range, e.g. 90d` }];
  }
  const backup = spec.backup;
  if ((backup?.enabled ?? true) && parsed.seconds < (backup?.retentionDays ?? 7) * DAY_SECONDS) {
    const retention = backup?.retentionDays ?? 7;
    return [{
      reason: 'KEKRotationIntervalBelowRetention',
      message: `kekRotation.interval ${rotation.interval} is shorter than backup.retentionDays (${retention}d): use at least ${formatDuration(retention * DAY_SECONDS)} or shorten the retention`,
    }];
  }
  return [];
}

function backupProblems(namespace: string, cluster: string, spec: KdcClusterSpec): Problem[] {
  const backup = spec.backup;
  if (!backup || backup.enabled === false) return [];
  const problems: Problem[] = [];
  const fields = backup.schedule.trim().split(/\s+/);
  if (fields.length !== 5 || !fields.every((f) => CRON_FIELD.test(f))) {
    problems.push({ reason: 'BackupScheduleInvalid', message: `backup.schedule "${backup.schedule}" is not a 5-field cron expression: write minute hour day month weekday, e.g. "0 2 * * *"` });
  }
  const settings = resolveBackupSettings(namespace, cluster, spec);
  if (settings && !settings.ok) problems.push({ reason: settings.reason, message: settings.message });
  return problems;
}

/** The namespace of the older encrypted cluster with this name in the same organisation, if any. */
export function olderNamesake(
  self: { namespace: string; name: string; creationTimestamp?: string },
  organizationOf: (namespace: string) => string | undefined,
  clusters: readonly { namespace: string; name: string; creationTimestamp?: string; encrypted: boolean }[],
): string | undefined {
  const org = organizationOf(self.namespace);
  const key = (c: { namespace: string; creationTimestamp?: string }) => `${c.creationTimestamp ?? '9999'}/${c.namespace}`;
  return clusters
    .filter((c) => c.name === self.name && c.namespace !== self.namespace && c.encrypted && organizationOf(c.namespace) === org && key(c) < key(self))
    .sort((a, b) => key(a).localeCompare(key(b)))[0]?.namespace;
}
