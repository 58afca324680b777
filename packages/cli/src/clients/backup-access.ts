// The bucket of one KdcCluster's backups, resolved exactly as k8-manager's backup CronJob does
// (resolveBackupSettings), with the credentials from the cluster's s3CredentialSecret.
import { readFileSync } from 'node:fs';
import { BackupStore } from '@kdc/backup-envelope';
import {
  BACKUP_CREDENTIAL_KEYS,
  DEFAULT_BACKUP_REGION,
  isNotFound,
  kdcClusterSpecSchema,
  resolveBackupSettings,
  type BackupSettings,
  type KdcClusterSpec,
  type KubeClient,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { flagOrEnv, str, type FlagSpecs } from '../terminal/args.ts';
import { failure, usageError } from '../errors.ts';
import { kubeFailure } from './kube.ts';

export const S3_FLAGS: FlagSpecs = {
  's3-endpoint': {
    type: 'string',
    value: 'url',
    help: 'S3 endpoint when the cluster sets none (default: $S3_ENDPOINT, else AWS)',
  },
  's3-ca-file': {
    type: 'string',
    value: 'file',
    help: 'PEM bundle to verify an https S3 endpoint (default: $S3_CA_FILE)',
  },
};

/** The spec with the schema's defaults; a spec the schema refuses is read as it is. */
export function clusterSpec(cluster: KubeObject): KdcClusterSpec {
  const parsed = kdcClusterSpecSchema.safeParse(cluster.spec ?? {});
  return parsed.success ? parsed.data : ((cluster.spec ?? {}) as KdcClusterSpec);
}

export interface ClusterBackups {
  store: BackupStore;
  settings: BackupSettings;
}

/** Backup settings of a cluster, or a failure that says why there are none. */
export function backupSettingsOf(namespace: string, cluster: KubeObject, s3EndpointFallback: string): BackupSettings {
  const name = cluster.metadata!.name!;
  const result = resolveBackupSettings(namespace, name, clusterSpec(cluster), s3EndpointFallback);
  if (result === null)
    throw failure(`backups are disabled for KdcCluster ${namespace}/${name} (spec.backup.enabled: false)`);
  if (!result.ok) throw failure(`KdcCluster ${namespace}/${name}: ${result.message}`);
  return result.settings;
}

export async function clusterBackups(
  kube: KubeClient,
  namespace: string,
  cluster: KubeObject,
  flags: Record<string, string | boolean>,
  env: Record<string, string | undefined>,
): Promise<ClusterBackups> {
  const settings = backupSettingsOf(namespace, cluster, flagOrEnv(flags, 's3-endpoint', env, ['S3_ENDPOINT']) ?? '');
  const secretName = settings.credentialSecret;
  let secret: KubeObject;
  try {
    secret = await kube.get<KubeObject>(at(RESOURCES.secret, namespace, secretName));
  } catch (error) {
    if (isNotFound(error)) {
      throw failure(
        `Secret ${namespace}/${secretName} (spec.backup.s3CredentialSecret) not found: create it with keys ${BACKUP_CREDENTIAL_KEYS.accessKeyId} and ${BACKUP_CREDENTIAL_KEYS.secretAccessKey}`,
      );
    }
    throw kubeFailure(`reading the S3 credentials Secret ${namespace}/${secretName}`, error);
  }
  const data = (secret.data ?? {}) as Record<string, string>;
  const value = (key: string) => (data[key] ? Buffer.from(data[key], 'base64').toString('utf8').trim() : undefined);
  const accessKeyId = value(BACKUP_CREDENTIAL_KEYS.accessKeyId);
  const secretAccessKey = value(BACKUP_CREDENTIAL_KEYS.secretAccessKey);
  for (const [key, v] of [
    [BACKUP_CREDENTIAL_KEYS.accessKeyId, accessKeyId],
    [BACKUP_CREDENTIAL_KEYS.secretAccessKey, secretAccessKey],
  ] as const) {
    if (!v)
      throw failure(
        `Secret ${namespace}/${secretName} has no key ${key} (or it is empty): add it (the S3 credentials of the backup bucket ${settings.bucket})`,
      );
  }
  const caFile = flagOrEnv(flags, 's3-ca-file', env, ['S3_CA_FILE']);
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw usageError(`cannot read --s3-ca-file ${caFile}: ${(error as Error).message}`);
    }
  }
  if (
    str(flags, 's3-endpoint') === undefined &&
    settings.s3Endpoint !== '' &&
    !/^https?:\/\//.test(settings.s3Endpoint)
  ) {
    throw failure(
      `S3 endpoint "${settings.s3Endpoint}" is not an http(s) URL: fix spec.backup.s3Endpoint or $S3_ENDPOINT`,
    );
  }
  const store = BackupStore.fromSettings({
    ...(settings.s3Endpoint ? { endpoint: settings.s3Endpoint } : {}),
    region: value(BACKUP_CREDENTIAL_KEYS.region) || DEFAULT_BACKUP_REGION,
    bucket: settings.bucket,
    accessKeyId,
    secretAccessKey,
    ...(caPem ? { caPem } : {}),
    maxAttempts: 2,
  });
  return { store, settings };
}
