import { z } from 'zod';
import { ANNOTATIONS, DEFAULT_BACKUP_CREDENTIAL_SECRET, PLUGIN_SLOTS, clusterNames } from '../names.ts';
import { PLUGIN_KEY_MODES } from '../cluster/plugin-keys.ts';
import { conditionSchema, dateTime, objectMetaSchema } from './common.ts';

// The schema is structural only: types, enums, defaults and simple bounds. Rules that need
// context (interval grammar and bounds, keyRef checks, prerequisites) are checked at reconcile
// time and reported as EncryptionConfigError, because SPEC 3.1 wants invalid specs accepted by
// the apiserver with no side effects rather than refused.

export const ENCRYPTABLE_RESOURCES = ['secrets', 'configmaps'] as const;
export type EncryptableResource = (typeof ENCRYPTABLE_RESOURCES)[number];

export const kekRotationSpecSchema = z.object({
  enabled: z.boolean().default(false),
  interval: z
    .string()
    .optional()
    .describe(
      'Rotation interval: units d, h, m, s (e.g. 90d, 1d12h); 7d..730d; at least retentionDays when backups are on',
    ),
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
  rewrapAfterRotation: z
    .boolean()
    .default(true)
    .describe(
      'Re-write every row under the new key_id after a KEK rotation (kubectl kdc rewrap-etcd does it on demand)',
    ),
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

/**
 * A run in this state has ended: nothing more is done for it, and a new request may start another.
 * Takes any string because the kube-dc.com/restore-state annotation can say anything.
 */
export const isRestoreFinished = (state: string | undefined) => state === 'Succeeded' || state === 'Failed';

// The restore state machine's own record (SPEC 3.1 restore-from). It lives in status, which only
// the controllers write: the kube-dc.com/restore-* annotations only show it.
export const restoreStatusSchema = z.object({
  key: z.string().optional().describe('The kube-dc.com/restore-from key this run restores'),
  state: z.enum(RESTORE_STATES).optional(),
  since: dateTime().optional().describe('When the run entered its state'),
  failure: z.string().optional().describe('<Reason>: <detail> of a run that ends Failed once the tenant is back up'),
});
export type RestoreStatus = z.output<typeof restoreStatusSchema>;

/** The restore a KdcCluster is in: `fresh` when a request has not been taken up yet (no state). */
export type RestoreRun = RestoreStatus & { key: string; fresh: boolean };

/**
 * Which restore run a KdcCluster is in, from the tenant's request (kube-dc.com/restore-from) and
 * the controller's record (status.restore). Pure. A run that has not ended goes on, whatever the
 * annotations say; a request is a new run when it names another key, or the same key once the
 * kube-dc.com/restore-state annotation of the finished run was removed (what `kubectl kdc backups
 * restore` does). The annotation is never a state to resume: only a finished run recorded by a
 * controller from before status.restore existed is read from it, so that it is not run again.
 */
export function restoreRun(
  annotations: Record<string, string> | undefined,
  status: { restore?: RestoreStatus } | undefined,
): RestoreRun | undefined {
  const record = status?.restore;
  if (record?.key && record.state && !isRestoreFinished(record.state))
    return { ...record, key: record.key, fresh: false };
  const requested = annotations?.[ANNOTATIONS.restoreFrom]?.trim();
  if (!requested) return undefined;
  const shown = annotations?.[ANNOTATIONS.restoreState];
  if (record?.key === requested && record.state && shown !== undefined)
    return { ...record, key: requested, fresh: false };
  if (!record?.key && isRestoreFinished(shown)) return { key: requested, state: shown as RestoreState, fresh: false };
  return { key: requested, fresh: true };
}

/** A restore was requested and has not ended. */
export const restoreActive = (run: RestoreRun | undefined) => run !== undefined && !isRestoreFinished(run.state);

// The migration's checkpoint (k8-manager src/migration): a restarted or newly elected controller
// resumes the pass here. Written by the controller only (tenants never get */status).
export const migrationStatusSchema = z.object({
  reason: z.enum(['enable', 'rewrap', 'decrypt', 'switch']),
  startedAt: dateTime(),
  pass: z.int().min(1),
  resource: z
    .enum(ENCRYPTABLE_RESOURCES)
    .optional()
    .describe('The resource being re-written; absent once the pass is done'),
  continue: z.string().max(4096).optional().describe('The tenant list continue token of that resource'),
  rewritten: z.int().min(0),
  total: z.int().min(0).describe('Rows counted by the scan before the first pass'),
  passEndedAt: dateTime().optional(),
});

export const kdcClusterStatusSchema = z.object({
  phase: z.string().optional(),
  observedGeneration: z.int().optional(),
  conditions: z
    .array(conditionSchema)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  encryption: z
    .object({
      resolvedKeyRef: z.string().optional(),
      resolvedBackupKeyRef: z.string().optional(),
      currentKeyVersion: z.int().optional(),
      kmsPluginReady: z.boolean().optional(),
      kekRotation: kekRotationStatusSchema.optional(),
      disableMigrationProgress: z
        .int()
        .min(0)
        .max(100)
        .nullable()
        .optional()
        .describe('null none, 0 started, 1..99 running, 100 done'),
      rewrapInProgress: z.boolean().optional(),
      lastRewrapCompleted: dateTime().optional(),
      coverage: z
        .object({
          total: z.int().min(0).describe('Rows of the configured resources under the tenant etcd prefix'),
          current: z.int().min(0).describe('Rows under a key_id the tenant KMS plugins publish now'),
          stale: z
            .int()
            .min(0)
            .describe('Encrypted rows under any other key_id (older version, other key or provider), or unreadable'),
          plaintext: z.int().min(0),
          scannedAt: dateTime().describe('When the scan read etcd (one revision)'),
          keyIds: z
            .array(z.string().max(1024))
            .max(8)
            .optional()
            .describe('The key_ids counted as current: what every plugin replica published when the scan ran'),
          configHash: z
            .string()
            .max(64)
            .optional()
            .describe('The EncryptionConfiguration every replica ran when the scan read etcd'),
          revision: z.int().min(0).optional().describe('The etcd revision the scan read'),
          byResource: z
            .partialRecord(
              z.enum(ENCRYPTABLE_RESOURCES),
              z.object({
                total: z.int().min(0),
                current: z.int().min(0),
                stale: z.int().min(0),
                plaintext: z.int().min(0),
              }),
            )
            .optional()
            .describe('The same counts per resource'),
        })
        .optional()
        .describe('Counted from the raw store by a scan of the configured resources (SPEC 5)'),
      migration: migrationStatusSchema.optional(),
      history: z
        .object({
          untilRevision: z
            .int()
            .min(1)
            .describe('etcd keeps the older revisions of the re-written rows until it compacts past this revision'),
          migrationEnded: dateTime(),
        })
        .optional()
        .describe(
          'Set when a migration ends, cleared once etcd compacted its old revisions (then defragment, docs/runbook.md)',
        ),
      sharedProviderResources: z
        .array(z.enum(ENCRYPTABLE_RESOURCES))
        .optional()
        .describe(
          'Resources encrypted together under one KMS provider name (configured before names per resource): they leave KMS only together',
        ),
      pluginKeys: z
        .array(
          z.object({
            slot: z.enum(PLUGIN_SLOTS),
            keyRef: z.string().max(253),
            transitKey: z.string().max(512),
            mode: z
              .enum(PLUGIN_KEY_MODES)
              .describe(
                'write: encrypts new rows; incoming/outgoing: read-only during a key switch; retiring: out of the config, still granted',
              ),
          }),
        )
        .max(2)
        .optional()
        .describe(
          'The KMS plugin instances the control plane runs, writer first, and the Transit key of each (a key switch runs two)',
        ),
      encryptedResources: z
        .array(z.enum(ENCRYPTABLE_RESOURCES))
        .optional()
        .describe('Resources the written EncryptionConfiguration encrypts ([kms, identity])'),
      decryptingResources: z
        .array(z.enum(ENCRYPTABLE_RESOURCES))
        .optional()
        .describe(
          'Resources configured [identity, kms] until a scan proves none of their rows is KMS-encrypted (disable, or dropped from resources)',
        ),
    })
    .optional(),
  backupBucket: z.string().optional(),
  backupDestinationPath: z.string().optional(),
  latestBackupKey: z.string().optional(),
  latestBackupTime: dateTime().optional(),
  latestRestoreKey: z.string().optional(),
  latestRestoreTime: dateTime().optional(),
  restore: restoreStatusSchema.optional(),
});

export const kdcClusterSchema = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema,
  spec: kdcClusterSpecSchema,
  status: kdcClusterStatusSchema.optional(),
});

/**
 * A KdcCluster spec parsed once per spec object. Informer caches hold each version of an object
 * as a new object, so the spec's identity is its version: the controllers look at every cluster
 * of a namespace on every reconcile and every KMSKey event, and without this parsed each one
 * again each time (quadratic in the clusters of a namespace). The result is shared: read it only.
 */
export function parseKdcClusterSpec(spec: unknown): z.ZodSafeParseResult<KdcClusterSpec> {
  if (typeof spec !== 'object' || spec === null) return kdcClusterSpecSchema.safeParse(spec);
  let parsed = parsedSpecs.get(spec);
  if (!parsed) parsedSpecs.set(spec, (parsed = kdcClusterSpecSchema.safeParse(spec)));
  return parsed;
}
const parsedSpecs = new WeakMap<object, z.ZodSafeParseResult<KdcClusterSpec>>();

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
  /** True while KMS is detached by break-glass and its annotation is still there. */
  forceDisabled: 'ForceDisabled',
  /** A key change: True while one runs, False with KeyChangeRefused when the spec asks for another meanwhile. */
  keySwitch: 'KeySwitch',
} as const;

export const ENCRYPTED_REASONS = {
  completed: 'EncryptionCompleted',
  inProgress: 'EncryptionInProgress',
  disabled: 'EncryptionDisabled',
  decryptionInProgress: 'DecryptionInProgress',
  decryptionCompleted: 'DecryptionCompleted',
  rewrapInProgress: 'RewrapInProgress',
} as const;

/** The KMSKey names a cluster uses: explicit keyRef or the auto key; backup defaults to it. */
export function resolveKeyRefs(cluster: string, spec: KdcClusterSpec): { etcd: string; backup: string } {
  const etcd = spec.encryption?.etcd.keyRef || clusterNames(cluster).autoEtcdKey;
  return { etcd, backup: spec.encryption?.etcd.backup?.keyRef || etcd };
}
