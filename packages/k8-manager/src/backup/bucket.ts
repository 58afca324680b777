// What k8-manager reads from a cluster's backup bucket, with the cluster's own credentials:
// the newest complete backup (status.latestBackupKey) and, before a restore, what a backup key
// names. It never reads backup contents.
//
// The bucket is the tenant's (and on an allow-listed endpoint that may be the tenant's own
// server), while k8-manager is shared: every read is small and bounded (object size, response
// size, listing pages, a deadline per request) and the whole lookup has a deadline, so a bucket
// that never stops answering costs one worker a few seconds, not the process its memory.
import type * as Envelope from '@kdc/backup-envelope';
import {
  BACKUP_CREDENTIAL_KEYS,
  DEFAULT_BACKUP_REGION,
  decodeSecretData,
  rfc3339,
  type KubeClient,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';

export interface BucketAccess {
  cluster: string;
  bucket: string;
  endpoint: string;
  credentials: Record<string, string>;
}

/** The bounds of k8-manager's bucket reads (metadata.json is about 1 KiB; a listing page about 100 KiB). */
export const BUCKET_LIMITS = {
  maxObjectBytes: 64 * 1024,
  maxResponseBytes: 2 * 1024 * 1024,
  /** 10,000 backups or unfinished prefixes of one cluster. */
  maxListPages: 10,
  operationTimeoutMs: 10_000,
  /** The whole lookup of one reconcile. */
  deadlineMs: 30_000,
} as const;

/** The cluster's `s3CredentialSecret`: its data and the required keys it lacks; null when it does not exist. */
export async function readBucketCredentials(
  kube: KubeClient,
  namespace: string,
  secretName: string,
): Promise<{ credentials: Record<string, string>; missing: string[] } | null> {
  const secret = await kube.getOrNull<KubeObject & { data?: Record<string, string> }>(
    at(RESOURCES.secret, namespace, secretName),
  );
  if (!secret) return null;
  const credentials = decodeSecretData(secret) ?? {};
  return {
    credentials,
    missing: [BACKUP_CREDENTIAL_KEYS.accessKeyId, BACKUP_CREDENTIAL_KEYS.secretAccessKey].filter(
      (k) => !credentials[k],
    ),
  };
}

export type LatestBackupLookup = (
  input: BucketAccess & { namespace: string },
) => Promise<{ key: string; time: string } | null>;

export type BackupInspection =
  | { found: false }
  | { found: true; kind: 'plaintext' }
  | { found: true; kind: 'envelope'; transitKey: string; source?: { cluster?: string; namespace?: string } };

export type BackupInspector = (input: BucketAccess & { key: string }) => Promise<BackupInspection>;

async function withStore<T>(
  input: BucketAccess,
  fn: (m: typeof Envelope, store: Envelope.BackupStore) => Promise<T>,
): Promise<T> {
  // Loaded on first use: clusters without backups never pay for the S3 SDK.
  const m = await import('@kdc/backup-envelope');
  const store = m.BackupStore.fromSettings({
    ...(input.endpoint ? { endpoint: input.endpoint } : {}),
    region: input.credentials[BACKUP_CREDENTIAL_KEYS.region] || DEFAULT_BACKUP_REGION,
    bucket: input.bucket,
    accessKeyId: input.credentials[BACKUP_CREDENTIAL_KEYS.accessKeyId]!,
    secretAccessKey: input.credentials[BACKUP_CREDENTIAL_KEYS.secretAccessKey]!,
    maxAttempts: 2,
    maxObjectBytes: BUCKET_LIMITS.maxObjectBytes,
    maxResponseBytes: BUCKET_LIMITS.maxResponseBytes,
    maxListPages: BUCKET_LIMITS.maxListPages,
    operationTimeoutMs: BUCKET_LIMITS.operationTimeoutMs,
    signal: AbortSignal.timeout(BUCKET_LIMITS.deadlineMs),
  });
  try {
    return await fn(m, store);
  } finally {
    store.destroy();
  }
}

/** The newest backup as "latest" is ordered (a schemaVersion 2 envelope, by its server-capped time). */
export const s3LatestBackup: LatestBackupLookup = (input) =>
  withStore(input, async (m, store) => {
    const newest = m.latestCandidates((await m.listBackups(store, input.cluster)).backups)[0];
    return newest ? { key: newest.key, time: rfc3339(m.backupTime(newest)) } : null;
  });

export const s3InspectBackup: BackupInspector = (input) =>
  withStore(input, async (m, store) => {
    if (!input.key.endsWith('/'))
      return (await store.head(input.key)) ? { found: true, kind: 'plaintext' } : { found: false };
    const metadata = await store.getText(input.key + m.ENVELOPE_OBJECTS.metadata);
    if (!metadata || !(await store.head(input.key + m.ENVELOPE_OBJECTS.snapshot))) return { found: false };
    const parsed = m.parseMetadata(metadata.text, input.key);
    return {
      found: true,
      kind: 'envelope',
      transitKey: parsed.transitKey,
      ...(parsed.source ? { source: parsed.source } : {}),
    };
  });
