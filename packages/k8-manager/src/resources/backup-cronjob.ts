import { createHash } from 'node:crypto';
import { ANNOTATIONS, BACKUP_JOB, LABELS, clusterNames, presentShardLabels } from '@kdc/shared';
import { backupJobEnv, backupJobMounts, backupJobVolumes, type BackupJobAccess } from './backup-job-access.ts';

// `<cluster>-etcd-backup` (SPEC 3.3): the kdc-backup job on the cluster's schedule. It streams a
// snapshot from the cluster's own DataStore etcd, envelope-encrypts it with a fresh Transit data
// key of the backup KMSKey, uploads it, then applies retention. It authenticates to OpenBao with
// its own projected token (role backup-<namespace>.<cluster>), never the plugin's.

export interface BackupCronJobInput extends BackupJobAccess {
  image: string;
  /** Client endpoints of the cluster's dedicated etcd DataStore (host:port). */
  etcdEndpoints: string[];
  /** A restore is running: no snapshot of an etcd that is being stopped and replaced. */
  suspend?: boolean;
  /** The cluster's shard labels (shardLabels), on the CronJob and its Jobs, for a sharded release's caches. */
  shard?: Readonly<Record<string, string | null>>;
}

const SIX_HOURS = 6 * 3600;

export function buildBackupCronJob(input: BackupCronJobInput) {
  const names = clusterNames(input.cluster);
  const { settings } = input;
  const labels = {
    ...presentShardLabels(input.shard),
    [LABELS.kdcCluster]: input.cluster,
    [BACKUP_JOB.componentLabel]: BACKUP_JOB.component,
  };
  const certs = `${BACKUP_JOB.etcdCertsDir}`;
  const env = [
    ...backupJobEnv(input),
    { name: 'KDC_NAMESPACE', value: input.namespace },
    // One member is enough: a snapshot is a consistent copy of the whole keyspace.
    { name: 'ETCD_ENDPOINT', value: `https://${input.etcdEndpoints[0]}` },
    { name: 'ETCD_CA_FILE', value: `${certs}/ca.crt` },
    { name: 'ETCD_CERT_FILE', value: `${certs}/server.crt` },
    { name: 'ETCD_KEY_FILE', value: `${certs}/server.key` },
  ];
  const podSpec = {
    serviceAccountName: names.backupServiceAccount,
    automountServiceAccountToken: false,
    restartPolicy: 'Never',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: BACKUP_JOB.uid,
      runAsGroup: BACKUP_JOB.uid,
      fsGroup: BACKUP_JOB.uid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: BACKUP_JOB.container,
        image: input.image,
        args: ['backup', `--retention-days=${settings.retentionDays}`],
        env,
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [
          ...backupJobMounts(input),
          { name: BACKUP_JOB.etcdCertsVolume, mountPath: certs, readOnly: true },
        ],
      },
    ],
    volumes: [
      ...backupJobVolumes(input),
      {
        name: BACKUP_JOB.etcdCertsVolume,
        secret: {
          secretName: BACKUP_JOB.datastoreCertsSecret(names.tenantControlPlane),
          defaultMode: 0o440,
          items: ['ca.crt', 'server.crt', 'server.key'].map((key) => ({ key, path: key })),
        },
      },
    ],
  };
  const spec = {
    schedule: settings.schedule,
    timeZone: 'Etc/UTC',
    ...(input.suspend ? { suspend: true } : {}),
    // Two snapshots of one etcd at once only double the load; a missed run waits for the next.
    concurrencyPolicy: 'Forbid',
    startingDeadlineSeconds: 3600,
    successfulJobsHistoryLimit: 3,
    failedJobsHistoryLimit: 3,
    jobTemplate: {
      metadata: { labels },
      spec: { backoffLimit: 1, activeDeadlineSeconds: SIX_HOURS, template: { metadata: { labels }, spec: podSpec } },
    },
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: names.backupCronJob,
      namespace: input.namespace,
      labels,
      annotations: { [ANNOTATIONS.specHash]: specHash(spec) },
    },
    spec,
  };
}

export type BackupCronJob = ReturnType<typeof buildBackupCronJob>;

/** What we wrote, hashed: the apiserver's defaults on the live object never look like drift. */
export function specHash(spec: unknown): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 32);
}

/** `<cluster>-etcd-backup`: the job's identity towards OpenBao (role backup-<namespace>.<cluster>). */
export function buildBackupServiceAccount(
  namespace: string,
  cluster: string,
  shard: Readonly<Record<string, string | null>> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: clusterNames(cluster).backupServiceAccount,
      namespace,
      labels: { ...presentShardLabels(shard), [LABELS.kdcCluster]: cluster },
    },
    // The job needs no Kubernetes API access; its token is only presented to OpenBao.
    automountServiceAccountToken: false,
  };
}
