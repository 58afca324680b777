import {
  BACKUP_CREDENTIAL_KEYS,
  BACKUP_JOB,
  OPENBAO_AUDIENCE,
  TCP_PATCH,
  clusterNames,
  openBaoAccessNames,
  type BackupSettings,
} from '@kdc/shared';

// What every kdc-backup pod (backup CronJob, restore Job) needs to reach the bucket and OpenBao:
// S3 credentials by secretKeyRef (never by value), the OpenBao address, namespace and CA, its own
// projected token (audience openbao, role backup-<namespace>.<cluster>) and the Transit key it may use.

export interface BackupJobAccess {
  namespace: string;
  cluster: string;
  settings: BackupSettings;
  openBaoUrl: string;
  openBaoNamespace?: string;
  /** The CA bundle is in `<cluster>-encryption-config` under TCP_PATCH.caKey. */
  hasCaBundle: boolean;
  transitKey: string;
}

export function backupJobEnv(a: BackupJobAccess) {
  const secretKey = (key: string, optional = false) => ({
    valueFrom: { secretKeyRef: { name: a.settings.credentialSecret, key, ...(optional ? { optional: true } : {}) } },
  });
  return [
    { name: 'KDC_CLUSTER', value: a.cluster },
    { name: 'S3_BUCKET', value: a.settings.bucket },
    ...(a.settings.s3Endpoint ? [{ name: 'S3_ENDPOINT', value: a.settings.s3Endpoint }] : []),
    { name: 'AWS_ACCESS_KEY_ID', ...secretKey(BACKUP_CREDENTIAL_KEYS.accessKeyId) },
    { name: 'AWS_SECRET_ACCESS_KEY', ...secretKey(BACKUP_CREDENTIAL_KEYS.secretAccessKey) },
    { name: 'AWS_REGION', ...secretKey(BACKUP_CREDENTIAL_KEYS.region, true) },
    { name: 'OPENBAO_ADDR', value: a.openBaoUrl },
    ...(a.openBaoNamespace ? [{ name: 'OPENBAO_NAMESPACE', value: a.openBaoNamespace }] : []),
    ...(a.hasCaBundle ? [{ name: 'OPENBAO_CACERT', value: `${TCP_PATCH.caDir}/${TCP_PATCH.caKey}` }] : []),
    { name: 'TRANSIT_KEY', value: a.transitKey },
    { name: 'OPENBAO_AUTH_ROLE', value: openBaoAccessNames(a.namespace, a.cluster).backupRole },
  ];
}

export function backupJobMounts(a: Pick<BackupJobAccess, 'hasCaBundle'>) {
  return [
    { name: BACKUP_JOB.tokenVolume, mountPath: TCP_PATCH.tokenDir, readOnly: true },
    ...(a.hasCaBundle ? [{ name: BACKUP_JOB.caVolume, mountPath: TCP_PATCH.caDir, readOnly: true }] : []),
  ];
}

export function backupJobVolumes(a: Pick<BackupJobAccess, 'cluster' | 'hasCaBundle'>) {
  return [
    {
      name: BACKUP_JOB.tokenVolume,
      projected: {
        defaultMode: 0o440,
        sources: [
          { serviceAccountToken: { audience: OPENBAO_AUDIENCE, expirationSeconds: 3600, path: TCP_PATCH.tokenFile } },
        ],
      },
    },
    ...(a.hasCaBundle
      ? [
          {
            name: BACKUP_JOB.caVolume,
            secret: {
              secretName: clusterNames(a.cluster).encryptionConfigSecret,
              defaultMode: 0o440,
              items: [{ key: TCP_PATCH.caKey, path: TCP_PATCH.caKey }],
            },
          },
        ]
      : []),
  ];
}
