import { BACKUP_JOB, LABELS, clusterNames } from '@kdc/shared';
import { backupJobEnv, backupJobMounts, backupJobVolumes, type BackupJobAccess } from './backup-job-access.ts';
import type { EtcdLayout } from '../tenant/etcd-layout.ts';

// `<cluster>-etcd-restore` (SPEC 3.1 restore-from), run while the control plane and etcd are
// stopped. Three steps in one pod, in order:
//   1. `prepare` (kdc-backup data-dir): removes a half-written `<data-dir>.restoring` of an earlier attempt;
//   2. `restore` (kdc-backup): downloads the backup, verifies every segment and the snapshot
//      SHA-256 before writing anything, then `etcdutl snapshot restore` into `<data-dir>.restoring`;
//   3. `swap` (kdc-backup data-dir): keeps the current data dir as `<data-dir>.pre-restore` and moves the
//      restored one into place. Nothing touches the live data dir before step 3.
// It runs as the backup writer (role backup-<namespace>.<cluster>, which may decrypt data keys) and as the
// etcd pod's user, so etcd can open the files.

/**
 * `transitKey`: only backups wrapped by it are accepted (a foreign backup is refused), and only
 * backups recorded for this namespace. `allowUnauthenticated`: the key is a plaintext `.db` a
 * person confirmed (kube-dc.com/restore-unauthenticated-confirmed); otherwise the job refuses one.
 */
export interface RestoreJobInput extends BackupJobAccess {
  key: string;
  allowUnauthenticated?: boolean;
  image: string;
  layout: EtcdLayout;
}

/** Watchers of the restored etcd must see a revision jump and resync, never an old revision again. */
export const RESTORE_BUMP_REVISION = 1_000_000_000;

export function buildRestoreJob(input: RestoreJobInput) {
  const names = clusterNames(input.cluster);
  const { layout } = input;
  const labels = { [LABELS.kdcCluster]: input.cluster, [BACKUP_JOB.componentLabel]: BACKUP_JOB.restoreComponent };
  const restoring = `${layout.dataDir}.restoring`;
  const previous = `${layout.dataDir}.pre-restore`;
  const args = [
    'restore',
    `--backup=${input.key}`,
    `--data-dir=${restoring}`,
    `--bump-revision=${RESTORE_BUMP_REVISION}`,
    ...(input.allowUnauthenticated ? ['--allow-unauthenticated'] : []),
    ...(layout.name ? [`--etcd-name=${layout.name}`] : []),
    ...(layout.initialCluster ? [`--initial-cluster=${layout.initialCluster}`] : []),
    ...(layout.initialAdvertisePeerUrls ? [`--initial-advertise-peer-urls=${layout.initialAdvertisePeerUrls}`] : []),
  ];
  const securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    ...(layout.runAsUser !== undefined ? { runAsUser: layout.runAsUser } : {}),
  };
  const dataMount = { name: 'etcd-data', mountPath: layout.mountPath };
  const fileStep = (name: string, args: string[]) => ({
    name,
    image: input.image,
    args: ['data-dir', ...args],
    securityContext,
    volumeMounts: [dataMount],
  });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: names.restoreJob, namespace: input.namespace, labels },
    spec: {
      // A failed restore is not retried blindly: the state machine brings the tenant back and says why.
      backoffLimit: 0,
      activeDeadlineSeconds: 6 * 3600,
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: names.backupServiceAccount,
          automountServiceAccountToken: false,
          restartPolicy: 'Never',
          ...(layout.podSecurityContext ? { securityContext: layout.podSecurityContext } : {}),
          initContainers: [
            fileStep('prepare', ['prepare', `--restoring=${restoring}`]),
            {
              name: BACKUP_JOB.restoreComponent,
              image: input.image,
              args,
              env: [...backupJobEnv(input), { name: 'KDC_NAMESPACE', value: input.namespace }],
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext,
              volumeMounts: [dataMount, ...backupJobMounts(input)],
            },
          ],
          containers: [
            fileStep('swap', [
              'swap',
              `--restoring=${restoring}`,
              `--data-dir=${layout.dataDir}`,
              `--previous=${previous}`,
            ]),
          ],
          volumes: [
            { name: 'etcd-data', persistentVolumeClaim: { claimName: layout.claimName } },
            ...backupJobVolumes(input),
          ],
        },
      },
    },
  };
}
