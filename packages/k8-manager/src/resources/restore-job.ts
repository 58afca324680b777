import { BACKUP_CREDENTIAL_KEYS, BACKUP_JOB, LABELS, OPENBAO_AUDIENCE, TCP_PATCH, clusterNames, type BackupSettings } from '@kdc/shared';
import type { EtcdLayout } from '../etcd-layout.ts';

// `<cluster>-etcd-restore` (SPEC 3.1 restore-from), run while the control plane and etcd are
// stopped. Three steps in one pod, in order:
//   1. `prepare` (shell image): removes a half-written `<data-dir>.restoring` of an earlier attempt;
//   2. `restore` (kdc-backup): downloads the backup, verifies every segment and the snapshot
//      SHA-256 before writing anything, then `etcdutl snapshot restore` into `<data-dir>.restoring`;
//   3. `swap` (shell image): keeps the current data dir as `<data-dir>.pre-restore` and moves the
//      restored one into place. Nothing touches the live data dir before step 3.
// It runs as the backup writer (role backup-<cluster>, which may decrypt data keys) and as the
// etcd pod's user, so etcd can open the files.

export interface RestoreJobInput {
  namespace: string;
  cluster: string;
  key: string;
  settings: BackupSettings;
  image: string;
  openBaoUrl: string;
  openBaoNamespace?: string;
  hasCaBundle: boolean;
  /** Only backups wrapped by this Transit key are accepted (a foreign backup is refused). */
  transitKey: string;
  layout: EtcdLayout;
  /** An image with a POSIX shell, mv and rm (the platform's socket-init image). */
  shellImage: string;
}

/** Watchers of the restored etcd must see a revision jump and resync, never an old revision again. */
export const RESTORE_BUMP_REVISION = 1_000_000_000;

export function buildRestoreJob(input: RestoreJobInput) {
  const names = clusterNames(input.cluster);
  const { settings, layout } = input;
  const labels = { [LABELS.kdcCluster]: input.cluster, [BACKUP_JOB.componentLabel]: BACKUP_JOB.restoreComponent };
  const secretKey = (key: string, optional = false) => ({ valueFrom: { secretKeyRef: { name: settings.credentialSecret, key, ...(optional ? { optional: true } : {}) } } });
  const restoring = `${layout.dataDir}.restoring`;
  const previous = `${layout.dataDir}.pre-restore`;
  const args = [
    'restore',
    `--backup=${input.key}`,
    `--data-dir=${restoring}`,
    `--bump-revision=${RESTORE_BUMP_REVISION}`,
    ...(layout.name ? [`--etcd-name=${layout.name}`] : []),
    ...(layout.initialCluster ? [`--initial-cluster=${layout.initialCluster}`] : []),
    ...(layout.initialAdvertisePeerUrls ? [`--initial-advertise-peer-urls=${layout.initialAdvertisePeerUrls}`] : []),
  ];
  const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...(layout.runAsUser !== undefined ? { runAsUser: layout.runAsUser } : {}) };
  const dataMount = { name: 'etcd-data', mountPath: layout.mountPath };
  const shellStep = (name: string, script: string) => ({ name, image: input.shellImage, command: ['sh', '-c', script], securityContext, volumeMounts: [dataMount] });
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
            shellStep('prepare', `rm -rf '${restoring}'`),
            {
              name: BACKUP_JOB.restoreComponent,
              image: input.image,
              args,
              env: [
                { name: 'KDC_CLUSTER', value: input.cluster },
                { name: 'S3_BUCKET', value: settings.bucket },
                ...(settings.s3Endpoint ? [{ name: 'S3_ENDPOINT', value: settings.s3Endpoint }] : []),
                { name: 'AWS_ACCESS_KEY_ID', ...secretKey(BACKUP_CREDENTIAL_KEYS.accessKeyId) },
                { name: 'AWS_SECRET_ACCESS_KEY', ...secretKey(BACKUP_CREDENTIAL_KEYS.secretAccessKey) },
                { name: 'AWS_REGION', ...secretKey(BACKUP_CREDENTIAL_KEYS.region, true) },
                { name: 'OPENBAO_ADDR', value: input.openBaoUrl },
                ...(input.openBaoNamespace ? [{ name: 'OPENBAO_NAMESPACE', value: input.openBaoNamespace }] : []),
                ...(input.hasCaBundle ? [{ name: 'OPENBAO_CACERT', value: `${TCP_PATCH.caDir}/${TCP_PATCH.caKey}` }] : []),
                { name: 'TRANSIT_KEY', value: input.transitKey },
              ],
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext,
              volumeMounts: [
                dataMount,
                { name: BACKUP_JOB.tokenVolume, mountPath: TCP_PATCH.tokenDir, readOnly: true },
                ...(input.hasCaBundle ? [{ name: BACKUP_JOB.caVolume, mountPath: TCP_PATCH.caDir, readOnly: true }] : []),
              ],
            },
          ],
          containers: [shellStep('swap', `set -e; rm -rf '${previous}'; if [ -e '${layout.dataDir}' ]; then mv '${layout.dataDir}' '${previous}'; fi; mv '${restoring}' '${layout.dataDir}'`)],
          volumes: [
            { name: 'etcd-data', persistentVolumeClaim: { claimName: layout.claimName } },
            { name: BACKUP_JOB.tokenVolume, projected: { defaultMode: 0o440, sources: [{ serviceAccountToken: { audience: OPENBAO_AUDIENCE, expirationSeconds: 3600, path: TCP_PATCH.tokenFile } }] } },
            ...(input.hasCaBundle ? [{ name: BACKUP_JOB.caVolume, secret: { secretName: names.encryptionConfigSecret, defaultMode: 0o440, items: [{ key: TCP_PATCH.caKey, path: TCP_PATCH.caKey }] } }] : []),
          ],
        },
      },
    },
  };
}
