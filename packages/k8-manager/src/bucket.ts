// What k8-manager reads from a cluster's backup bucket, with the cluster's own credentials:
// the newest complete backup (status.latestBackupKey) and, before a restore, what a backup key
// names. It never reads backup contents.
import type * as Envelope from '@kdc/backup-envelope';
import { BACKUP_CREDENTIAL_KEYS, CORE, DEFAULT_BACKUP_REGION, decodeSecretData, rfc3339, type KubeClient, type KubeObject } from '@kdc/shared';

export interface BucketAccess {
  cluster: string;
  bucket: string;
  endpoint: string;
  credentials: Record<string, string>;
}

/** The cluster's `s3CredentialSecret`: its data and the required keys it lacks; null when it does not exist. */
export async function readBucketCredentials(kube: KubeClient, namespace: string, secretName: string): Promise<{ credentials: Record<string, string>; missing: string[] } | null> {
  const secret = await kube.getOrNull<KubeObject & { data?: Record<string, string> }>(CORE('secrets', namespace, secretName));
  if (!secret) return null;
  const credentials = decodeSecretData(secret) ?? {};
  return { credentials, missing: [BACKUP_CREDENTIAL_KEYS.accessKeyId, BACKUP_CREDENTIAL_KEYS.secretAccessKey].filter((k) => !credentials[k]) };
}

export type LatestBackupLookup = (input: BucketAccess & { namespace: string }) => Promise<{ key: string; time: string } | null>;

export type BackupInspection =
  | { found: false }
  | { found: true; kind: 'envelope' | 'plaintext'; transitKey?: string };

export type BackupInspector = (input: BucketAccess & { key: string }) => Promise<BackupInspection>;

async function withStore<T>(input: BucketAccess, fn: (m: typeof Envelope, store: Envelope.BackupStore) => Promise<T>): Promise<T> {
  // Loaded on first use: clusters without backups never pay for the S3 SDK.
  const m = await import('@kdc/backup-envelope');
  const store = m.BackupStore.fromSettings({
    ...(input.endpoint ? { endpoint: input.endpoint } : {}),
    region: input.credentials[BACKUP_CREDENTIAL_KEYS.region] || DEFAULT_BACKUP_REGION,
    bucket: input.bucket,
    accessKeyId: input.credentials[BACKUP_CREDENTIAL_KEYS.accessKeyId]!,
    secretAccessKey: input.credentials[BACKUP_CREDENTIAL_KEYS.secretAccessKey]!,
    maxAttempts: 2,
  });
  try {
    return await fn(m, store);
  } finally {
    store.destroy();
  }
}

export const s3LatestBackup: LatestBackupLookup = (input) => withStore(input, async (m, store) => {
  const newest = (await m.listBackups(store, input.cluster)).backups.at(-1);
  return newest ? { key: newest.key, time: rfc3339(newest.createdAt) } : null;
});

export const s3InspectBackup: BackupInspector = (input) => withStore(input, async (m, store) => {
  if (!input.key.endsWith('/')) return (await store.head(input.key)) ? { found: true, kind: 'plaintext' } : { found: false };
  const metadata = await store.getText(input.key + m.ENVELOPE_OBJECTS.metadata);
  if (!metadata) return { found: false };
  return { found: true, kind: 'envelope', transitKey: m.parseMetadata(metadata.text, input.key).transitKey };
});
