import { z } from 'zod';
import { DEFAULT_BACKUP_CREDENTIAL_SECRET, clusterNames } from '../names.ts';
import { conditionSchema, dateTime, objectMetaSchema } from './common.ts';

// The schema is structural only: types, enums, defaults and simple bounds. Rules that need
// context (interval grammar and bounds, keyRef checks, prerequisites) are checked at reconcile
// time and reported as EncryptionConfigError, because SPEC 3.1 wants invalid specs accepted by
// the apiserver with no side effects rather than refused.

export const ENCRYPTABLE_RESOURCES = ['secrets', 'configmaps'] as const;

export const kekRotationSpecSchema = z.object({
  enabled: z.boolean().default(false),
  interval: z.string().optional().describe('Rotation interval: units d, h, m, s (e.g. 90d, 1d12h); 7d..730d; at least retentionDays when backups are on'),
});

export const etcdEncryptionSpecSchema = z.object({
  enabled: z.boolean(),
  keyRef: z.string().optional().describe('KMSKey in the same namespace; omitted = auto "<cluster>-etcd"'),
  resources: z
    .array(z.enum(ENCRYPTABLE_RESOURCES))
    .min(1)
    .max(2)
    .default(['secrets'])
    .meta({ 'x-kubernetes-list-type': 'set' }),
  kekRotation: kekRotationSpecSchema.optional(),
  backup: z.object({ keyRef: z.string().optional() }).optional(),
  disableRequested: z.boolean().optional().describe('Start the safe disable migration'),
});

export const backupSpecSchema = z.object({
  enabled: z.boolean().default(true),
  schedule: z.string().default('0 2 * * *').describe('5-field cron'),
  retentionDays: z.int().min(1).max(365).default(7),
  destinationPath: z.string().optional().describe('default s3://<projectNS>-managed-k8s-backups/<cluster>/'),
  s3Endpoint: z.string().optional(),
  s3CredentialSecret: z.string().default(DEFAULT_BACKUP_CREDENTIAL_SECRET),
});

export const kdcClusterSpecSchema = z.object({
  version: z.string().min(1).describe('Tenant Kubernetes version, e.g. v1.35.0'),
  controlPlane: z.object({ replicas: z.int().min(1).max(9).default(2) }).default({ replicas: 2 }),
  dataStore: z.string().optional().describe('Kamaji DataStore name'),
  encryption: z.object({ etcd: etcdEncryptionSpecSchema }).optional(),
  backup: backupSpecSchema.optional(),
});

export const kekRotationStatusSchema = z.object({
  enabled: z.boolean().optional(),
  currentVersion: z.int().optional(),
  lastRotatedTime: dateTime().optional(),
  nextRotationTime: dateTime().optional(),
  minDecryptionVersion: z.int().optional(),
});

export const kdcClusterStatusSchema = z.object({
  phase: z.string().optional(),
  observedGeneration: z.int().optional(),
  conditions: z.array(conditionSchema).optional().meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  encryption: z
    .object({
      resolvedKeyRef: z.string().optional(),
      resolvedBackupKeyRef: z.string().optional(),
      currentKeyVersion: z.int().optional(),
      kmsPluginReady: z.boolean().optional(),
      kekRotation: kekRotationStatusSchema.optional(),
      disableMigrationProgress: z.int().min(0).max(100).nullable().optional().describe('null none, 0 started, 1..99 running, 100 done'),
      rewrapInProgress: z.boolean().optional(),
      lastRewrapCompleted: dateTime().optional(),
    })
    .optional(),
  backupBucket: z.string().optional(),
  backupDestinationPath: z.string().optional(),
  latestBackupKey: z.string().optional(),
  latestBackupTime: dateTime().optional(),
  latestRestoreKey: z.string().optional(),
  latestRestoreTime: dateTime().optional(),
});

export const kdcClusterSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema,
  spec: kdcClusterSpecSchema,
  status: kdcClusterStatusSchema.optional(),
});

export type KdcClusterSpecInput = z.input<typeof kdcClusterSpecSchema>;
export type KdcClusterSpec = z.output<typeof kdcClusterSpecSchema>;
export type KdcClusterStatus = z.output<typeof kdcClusterStatusSchema>;
export type KdcCluster = z.output<typeof kdcClusterSchema>;
export type EtcdEncryptionSpec = z.output<typeof etcdEncryptionSpecSchema>;
export type BackupSpec = z.output<typeof backupSpecSchema>;

export const KDC_CLUSTER_CONDITIONS = {
  ready: 'Ready',
  encryptionConfigError: 'EncryptionConfigError',
  encryptionAvailable: 'EncryptionAvailable',
  encrypted: 'Encrypted',
  kekRotationManagedExternally: 'KEKRotationManagedExternally',
  backupReady: 'BackupReady',
  restoreReady: 'RestoreReady',
  kmsPreflight: 'KMSPreflight',
} as const;

export const ENCRYPTED_REASONS = {
  completed: 'EncryptionCompleted',
  inProgress: 'EncryptionInProgress',
  disabled: 'EncryptionDisabled',
  decryptionInProgress: 'DecryptionInProgress',
  decryptionCompleted: 'DecryptionCompleted',
  rewrapInProgress: 'RewrapInProgress',
} as const;

export const RESTORE_STATES = [
  'Validating',
  'DrainingControlPlane',
  'StoppingEtcd',
  'RestoringSnapshot',
  'StartingEtcd',
  'StartingControlPlane',
  'Succeeded',
  'Failed',
] as const;
export type RestoreState = (typeof RESTORE_STATES)[number];

/** The KMSKey names a cluster uses: explicit keyRef or the auto key; backup defaults to it. */
export function resolveKeyRefs(cluster: string, spec: KdcClusterSpec): { etcd: string; backup: string } {
  const etcd = spec.encryption?.etcd.keyRef || clusterNames(cluster).autoEtcdKey;
  return { etcd, backup: spec.encryption?.etcd.backup?.keyRef || etcd };
}
