// Where a cluster's backups go and how the job reaches the bucket (SPEC 3.1 `backup`), resolved
// once for the k8-manager CronJob, its status and the CLI, so they can never disagree.
import type { KdcClusterSpec } from '../api/kdccluster.ts';
import { DEFAULT_BACKUP_CREDENTIAL_SECRET, defaultBackupBucket } from '../names.ts';

/** Keys of the `s3CredentialSecret` (the AWS SDK's own environment names). */
export const BACKUP_CREDENTIAL_KEYS = {
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
  /** Optional; default us-east-1. */
  region: 'AWS_REGION',
} as const;

export const DEFAULT_BACKUP_REGION = 'us-east-1';

export interface BackupSettings {
  bucket: string;
  /** `s3://<bucket>/<cluster>/`: the layout of SPEC 6 puts every backup under `<cluster>/`. */
  destinationPath: string;
  /** Empty string: AWS itself. */
  s3Endpoint: string;
  credentialSecret: string;
  schedule: string;
  retentionDays: number;
}

export type BackupSettingsResult =
  { ok: true; settings: BackupSettings } | { ok: false; reason: 'BackupDestinationInvalid'; message: string };

const DESTINATION = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/(.*))?$/;

/**
 * The backup settings of an enabled backup (null when backups are off). The destination's
 * prefix must be empty or `<cluster>/`: the layout `<cluster>/<cluster>-<timestamp>/` is what
 * restore, rewrap, retention and the inventory read.
 */
export function resolveBackupSettings(
  namespace: string,
  cluster: string,
  spec: KdcClusterSpec,
  platformS3Endpoint = '',
): BackupSettingsResult | null {
  const backup = spec.backup ?? {
    enabled: true,
    schedule: '0 2 * * *',
    retentionDays: 7,
    s3CredentialSecret: DEFAULT_BACKUP_CREDENTIAL_SECRET,
  };
  if (backup.enabled === false) return null;
  let bucket = defaultBackupBucket(namespace);
  if (backup.destinationPath !== undefined) {
    const match = DESTINATION.exec(backup.destinationPath);
    const prefix = match?.[3] ?? '';
    if (!match || (prefix !== '' && prefix !== `${cluster}/` && prefix !== cluster)) {
      return {
        ok: false,
        reason: 'BackupDestinationInvalid',
        message: `backup.destinationPath "${backup.destinationPath}" must be s3://<bucket>/ or s3://<bucket>/${cluster}/ (backups are stored as ${cluster}/${cluster}-<timestamp>/): fix it or remove it for the default s3://${bucket}/${cluster}/`,
      };
    }
    bucket = match[1]!;
  }
  return {
    ok: true,
    settings: {
      bucket,
      destinationPath: `s3://${bucket}/${cluster}/`,
      s3Endpoint: (backup.s3Endpoint ?? '').trim() || platformS3Endpoint,
      credentialSecret: backup.s3CredentialSecret || DEFAULT_BACKUP_CREDENTIAL_SECRET,
      schedule: backup.schedule,
      retentionDays: backup.retentionDays,
    },
  };
}

export type S3EndpointCheck = { ok: true } | { ok: false; reason: 'S3EndpointNotAllowed'; message: string };

/**
 * `scheme://host[:port]` of an endpoint (lowercase host, default port dropped), or null when it
 * is not a bare http(s) origin (a path, credentials, a query or a fragment).
 */
export function s3EndpointOrigin(endpoint: string): string | null {
  let url: URL;
  try {
    url = new URL(endpoint.trim());
  } catch {
    return null;
  }
  if (
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '/' && url.pathname !== '')
  )
    return null;
  return `${url.protocol}//${url.host}`;
}

/**
 * Whether k8-manager and the jobs it makes may use `endpoint` (the resolved settings.s3Endpoint):
 * the platform's own S3 endpoint (empty: AWS) or one in the platform's allow-list. Pure.
 */
export function checkS3Endpoint(
  endpoint: string,
  platform: { s3Endpoint?: string; s3EndpointAllowlist?: readonly string[] },
): S3EndpointCheck {
  const platformEndpoint = platform.s3Endpoint ?? '';
  if (endpoint === platformEndpoint) return { ok: true };
  const origin = s3EndpointOrigin(endpoint);
  const allowed = [platformEndpoint, ...(platform.s3EndpointAllowlist ?? [])]
    .map((e) => (e ? s3EndpointOrigin(e) : null))
    .filter((e): e is string => e !== null);
  if (origin && allowed.includes(origin)) return { ok: true };
  const shown = allowed.length ? allowed.join(', ') : 'none';
  return {
    ok: false,
    reason: 'S3EndpointNotAllowed',
    message: `spec.backup.s3Endpoint "${endpoint}" is ${origin ? 'not an S3 endpoint this platform allows' : 'not a bare http(s)://host[:port]'} (allowed: ${shown}; the platform operator sets S3_ENDPOINT_ALLOWLIST on k8-manager, chart value k8Manager.s3EndpointAllowlist): use an allowed endpoint or remove spec.backup.s3Endpoint for the platform's ${platformEndpoint || 'AWS'}`,
  };
}
