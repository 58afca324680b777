import {
  BACKUP_CREDENTIAL_KEYS,
  BACKUP_JOB,
  KDC_CLUSTER_CONDITIONS,
  clusterNames,
  type BackupSettings,
  type ConditionInput,
} from '@kdc/shared';
import type { JobOutcome } from './jobs.ts';
import { buildBackupCronJob, buildBackupServiceAccount, type BackupCronJob } from '../resources/backup-cronjob.ts';

// The backup half of a KdcCluster (SPEC 3.3, 6) as pure functions: the next single change
// (ServiceAccount, CronJob, or removing the CronJob and its running Jobs) and the BackupReady
// condition. Runs only for a valid, encrypted cluster whose TenantControlPlane exists.

export interface ObservedBackup {
  namespace: string;
  cluster: string;
  /** null: spec.backup.enabled is false. */
  settings: BackupSettings | null;
  image?: string;
  openBaoUrl: string;
  openBaoNamespace?: string;
  hasCaBundle: boolean;
  /** The Transit key behind the backup KMSKey, and whether that KMSKey is Ready. */
  backupKey: { name: string; transitKey: string; ready: boolean; message?: string };
  /** TCP status.storage.dataStoreName. */
  dataStoreName?: string;
  /** The DataStore object (null: not found). Undefined when not looked up. */
  dataStore?: { driver: string; endpoints: string[] } | null;
  /** Other TenantControlPlanes (namespace/name) on the same DataStore. */
  dataStoreNeighbours: string[];
  datastoreCertsExists: boolean;
  /** Missing keys of the credential Secret; null: the Secret does not exist. */
  credentialsMissingKeys: string[] | null;
  serviceAccountExists: boolean;
  /** The spec hash annotation of the live CronJob; null: no CronJob. */
  cronJobHash: string | null;
  /** The newest Job of the CronJob, if any. */
  latestJob?: JobOutcome;
  /** Backup Jobs of this cluster that have not finished (read when the CronJob must go). */
  activeJobs?: string[];
  latestBackup?: { key: string; time: string };
  /** Why the bucket could not be listed after the newest Job (its limits, its deadline, S3 itself). */
  bucketError?: string;
  /** Why the endpoint of spec.backup is refused (the platform's allow-list); undefined: allowed. */
  endpointRefusal?: string;
  /** A restore of this cluster is running: the CronJob is suspended meanwhile. */
  restoring?: boolean;
  /** The cluster's shard labels (shardLabels): on the ServiceAccount, the CronJob and its Jobs. */
  shardLabels?: Readonly<Record<string, string | null>>;
}

export type BackupAction =
  | { kind: 'createServiceAccount'; object: ReturnType<typeof buildBackupServiceAccount> }
  | { kind: 'writeCronJob'; object: BackupCronJob; exists: boolean }
  | { kind: 'deleteCronJob'; why: string }
  | { kind: 'deleteJobs'; names: string[]; why: string }
  | { kind: 'done' };

export interface BackupPlan {
  action: BackupAction;
  condition: Omit<ConditionInput, 'observedGeneration'>;
}

const notReady = (reason: string, message: string) => ({
  type: KDC_CLUSTER_CONDITIONS.backupReady,
  status: 'False' as const,
  reason,
  message,
});

export type Blocker = BackupPlan['condition'] & {
  /**
   * A CronJob must not run at all (it would read a DataStore that is not, or no longer, this
   * tenant's alone, or send the data to an endpoint the platform refuses): it and its running
   * Jobs go. Otherwise it is left to fail loudly, and the condition says why.
   */
  unsafe?: boolean;
};

const unsafe = (reason: string, message: string): Blocker => ({ ...notReady(reason, message), unsafe: true });

/** What the shell reads from the API for a check; each is read once, for the first check that needs it. */
export type BackupRead = 'dataStore' | 'datastoreCerts' | 'credentials';

export interface BackupCheck {
  /** Absent: the check judges what the observation starts with (spec, platform, informer caches). */
  needs?: BackupRead;
  blocks: (o: ObservedBackup) => Blocker | null;
}

/**
 * What backups need, in the order they are judged: the first check that blocks names the
 * condition. The shell walks the same list and stops reading there, so a cluster that cannot take
 * backups costs a few reads, and the two cannot disagree on the order.
 */
export const BACKUP_CHECKS: readonly BackupCheck[] = [
  { blocks: (o) => (o.endpointRefusal ? unsafe('S3EndpointNotAllowed', o.endpointRefusal) : null) },
  {
    blocks: (o) =>
      o.image
        ? null
        : notReady(
            'BackupImageMissing',
            'no backup job image is configured: set KDC_BACKUP_IMAGE on k8-manager (chart value k8Manager.backupImage)',
          ),
  },
  {
    needs: 'dataStore',
    blocks: (o) =>
      o.dataStoreName
        ? null
        : unsafe(
            'DataStoreUnknown',
            `waiting for TenantControlPlane ${clusterNames(o.cluster).tenantControlPlane} to report status.storage.dataStoreName`,
          ),
  },
  {
    needs: 'dataStore',
    blocks: (o) =>
      o.dataStore
        ? null
        : unsafe(
            'DataStoreUnknown',
            `DataStore ${o.dataStoreName} (from TenantControlPlane ${clusterNames(o.cluster).tenantControlPlane}) does not exist`,
          ),
  },
  {
    needs: 'dataStore',
    blocks: (o) =>
      o.dataStore!.driver === 'etcd' && o.dataStore!.endpoints.length > 0
        ? null
        : unsafe(
            'DataStoreUnsupported',
            `DataStore ${o.dataStoreName} uses driver ${o.dataStore!.driver}${o.dataStore!.endpoints.length ? '' : ' without endpoints'}: etcd snapshots need an etcd DataStore with endpoints`,
          ),
  },
  {
    needs: 'dataStore',
    blocks: (o) => {
      if (!o.dataStoreNeighbours.length) return null;
      const shown = o.dataStoreNeighbours.slice(0, 3).join(', ') + (o.dataStoreNeighbours.length > 3 ? ', ...' : '');
      return unsafe(
        'SharedDataStore',
        `DataStore ${o.dataStoreName} also serves ${o.dataStoreNeighbours.length} other control plane(s) (${shown}): an etcd snapshot cannot be limited to one tenant's prefix, so it would carry their data, and the backup CronJob is removed. Give this cluster a dedicated DataStore (spec.dataStore) to take backups`,
      );
    },
  },
  {
    needs: 'datastoreCerts',
    blocks: (o) =>
      o.datastoreCertsExists
        ? null
        : notReady(
            'DataStoreUnknown',
            `Secret ${BACKUP_JOB.datastoreCertsSecret(clusterNames(o.cluster).tenantControlPlane)} (Kamaji's DataStore client certificate) does not exist yet`,
          ),
  },
  {
    blocks: (o) =>
      o.backupKey.ready
        ? null
        : notReady(
            'BackupKeyNotReady',
            `backup KMSKey ${o.backupKey.name} is not Ready${o.backupKey.message ? `: ${o.backupKey.message}` : ''}`,
          ),
  },
  {
    needs: 'credentials',
    blocks: (o) =>
      o.credentialsMissingKeys !== null
        ? null
        : notReady(
            'S3NotAvailable',
            `Secret ${o.namespace}/${o.settings!.credentialSecret} does not exist: create it with keys ${BACKUP_CREDENTIAL_KEYS.accessKeyId} and ${BACKUP_CREDENTIAL_KEYS.secretAccessKey} for bucket ${o.settings!.bucket}`,
          ),
  },
  {
    needs: 'credentials',
    blocks: (o) =>
      !o.credentialsMissingKeys?.length
        ? null
        : notReady(
            'S3NotAvailable',
            `Secret ${o.namespace}/${o.settings!.credentialSecret} lacks ${o.credentialsMissingKeys.join(', ')}: add them (the credentials for bucket ${o.settings!.bucket})`,
          ),
  },
];

/** Why backups cannot be taken yet, or null when everything they need is there. */
function blocker(o: ObservedBackup): Blocker | null {
  for (const check of BACKUP_CHECKS) {
    const blocked = check.blocks(o);
    if (blocked) return blocked;
  }
  return null;
}

function readyCondition(o: ObservedBackup): BackupPlan['condition'] {
  const names = clusterNames(o.cluster);
  const settings = o.settings!;
  const job = o.latestJob;
  if (job?.result === 'Failed') {
    return notReady(
      'BackupFailed',
      `Job ${job.name} failed${job.reason ? ` (${job.reason})` : ''}: see kubectl logs -n ${o.namespace} job/${job.name}; the next run follows the schedule "${settings.schedule}"`,
    );
  }
  if (o.bucketError)
    return notReady(
      'BucketUnreadable',
      `after Job ${job?.name ?? '(none)'}, the backups in ${settings.destinationPath} could not be listed: ${o.bucketError}`,
    );
  if (o.latestBackup) {
    return {
      type: KDC_CLUSTER_CONDITIONS.backupReady,
      status: 'True',
      reason: 'BackupSucceeded',
      message: `latest backup s3://${settings.bucket}/${o.latestBackup.key} at ${o.latestBackup.time}`,
    };
  }
  return {
    type: KDC_CLUSTER_CONDITIONS.backupReady,
    status: 'True',
    reason: 'Scheduled',
    message: `CronJob ${names.backupCronJob} runs on "${settings.schedule}" (UTC) into ${settings.destinationPath}; no backup yet`,
  };
}

export function planBackup(o: ObservedBackup): BackupPlan {
  if (!o.settings) {
    return {
      action: o.cronJobHash !== null ? { kind: 'deleteCronJob', why: 'backups are disabled' } : { kind: 'done' },
      condition: notReady(
        'BackupDisabled',
        'spec.backup.enabled is false: no etcd backups are taken (existing backups are kept)',
      ),
    };
  }
  const blocked = blocker(o);
  if (blocked?.unsafe) {
    const { unsafe: _, ...condition } = blocked;
    const why = `${condition.reason}: ${condition.message}`;
    if (o.cronJobHash !== null) return { action: { kind: 'deleteCronJob', why }, condition };
    if (o.activeJobs?.length) return { action: { kind: 'deleteJobs', names: o.activeJobs, why }, condition };
    return { action: { kind: 'done' }, condition };
  }
  // A CronJob that can no longer work is left as it is: its next run fails loudly, and the
  // condition says why; deleting it would hide that backups stopped.
  if (blocked) return { action: { kind: 'done' }, condition: blocked };
  if (!o.serviceAccountExists)
    return {
      action: {
        kind: 'createServiceAccount',
        object: buildBackupServiceAccount(o.namespace, o.cluster, o.shardLabels),
      },
      condition: readyCondition(o),
    };
  const cronJob = buildBackupCronJob({
    namespace: o.namespace,
    cluster: o.cluster,
    settings: o.settings,
    image: o.image!,
    openBaoUrl: o.openBaoUrl,
    ...(o.openBaoNamespace ? { openBaoNamespace: o.openBaoNamespace } : {}),
    hasCaBundle: o.hasCaBundle,
    transitKey: o.backupKey.transitKey,
    etcdEndpoints: o.dataStore!.endpoints,
    ...(o.restoring ? { suspend: true } : {}),
    ...(o.shardLabels ? { shard: o.shardLabels } : {}),
  });
  const hash = cronJob.metadata.annotations['kube-dc.com/spec-hash'];
  if (o.cronJobHash !== hash)
    return {
      action: { kind: 'writeCronJob', object: cronJob, exists: o.cronJobHash !== null },
      condition: readyCondition(o),
    };
  return { action: { kind: 'done' }, condition: readyCondition(o) };
}
