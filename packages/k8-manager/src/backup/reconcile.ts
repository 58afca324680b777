import {
  ANNOTATIONS,
  BACKUP_JOB,
  checkS3Endpoint,
  clusterNames,
  findCondition,
  isAlreadyExists,
  isNotFound,
  kmsKeyTransitName,
  resolveBackupSettings,
  resolveKeyRefs,
  runPass,
  type Condition,
  type EventRecorder,
  type Informer,
  type KdcClusterSpec,
  type KdcClusterStatus,
  type KubeClient,
  type KubeObject,
  type Logger,
  type PlatformConfig,
  type TenantControlPlane,
  at,
  RESOURCES,
  type KmsKeyObject,
} from '@kdc/shared';
import { readBucketCredentials, type LatestBackupLookup } from './bucket.ts';
import { dataStoreFacts, type TcpsByDataStore } from '../tenant/datastore.ts';
import {
  BACKUP_CHECKS,
  planBackup,
  type BackupAction,
  type BackupPlan,
  type BackupRead,
  type ObservedBackup,
} from './plan.ts';
import { jobOutcome } from './jobs.ts';
import { clusterOwner } from '../refs.ts';
import type { OwnedReader } from '../owned/owned-reads.ts';

// The imperative shell of the backup half: reads what planBackup needs, in the order of
// BACKUP_CHECKS and no further than the first that blocks, executes its changes, and
// finds the newest backup in the bucket once per finished Job. Where the CronJob must not run
// (planBackup's unsafe blockers) it also reads the CronJob and the running Jobs, to remove them.

export interface BackupReconcilerDeps {
  kube: KubeClient;
  tcpsOnDataStore: TcpsByDataStore;
  /** The backup ServiceAccount, CronJob and Jobs (owned-reads.ts). */
  owned: OwnedReader;
  keys: Informer<KmsKeyObject>;
  recorder: EventRecorder;
  logger: Logger;
  latestBackup: LatestBackupLookup;
  countWrite: (action: string) => void;
}

export interface BackupInput {
  cluster: KubeObject & { status?: KdcClusterStatus };
  namespace: string;
  name: string;
  spec: KdcClusterSpec;
  platform: PlatformConfig;
  organization?: string;
  tcp: TenantControlPlane;
  /** The cluster's values of the labels its shard's selector reads: on what the backup makes. */
  shardLabels?: Readonly<Record<string, string | null>>;
  /** A restore is running (the CronJob is suspended meanwhile). */
  restoring: boolean;
}

export interface BackupResult {
  condition: BackupPlan['condition'];
  fields: Pick<KdcClusterStatus, 'backupBucket' | 'backupDestinationPath' | 'latestBackupKey' | 'latestBackupTime'>;
}

const keyReady = (key: KubeObject | undefined): { ready: boolean; message?: string } => {
  const ready = findCondition(
    (key as { status?: { conditions?: Condition[] } } | undefined)?.status?.conditions,
    'Ready',
  );
  return ready?.status === 'True'
    ? { ready: true }
    : { ready: false, ...(ready?.message ? { message: ready.message } : key ? {} : { message: 'it does not exist' }) };
};

type Observation = { o: ObservedBackup; cronJob: KubeObject | null; credentials?: Record<string, string> };

export function backupReconciler(deps: BackupReconcilerDeps) {
  /** Per cluster: the Job whose completion the newest listing already reflects, or why it failed. */
  const listedFor = new Map<string, { job: string; error?: string }>();

  async function observe(
    input: BackupInput,
    settingsResult: ReturnType<typeof resolveBackupSettings>,
  ): Promise<Observation> {
    const { namespace, name, platform } = input;
    const names = clusterNames(name);
    const keyRefs = resolveKeyRefs(name, input.spec);
    const backupKeyObject = deps.keys.get(keyRefs.backup, namespace);
    const o: ObservedBackup = {
      namespace,
      cluster: name,
      settings: settingsResult?.ok ? settingsResult.settings : null,
      ...(platform.backupImage ? { image: platform.backupImage } : {}),
      openBaoUrl: platform.openBaoUrl,
      ...(input.organization ? { openBaoNamespace: input.organization } : {}),
      hasCaBundle: Boolean(platform.openBaoCaBundle),
      backupKey: {
        name: keyRefs.backup,
        transitKey: kmsKeyTransitName(namespace, keyRefs.backup, backupKeyObject?.status?.keyId),
        ...keyReady(backupKeyObject),
      },
      dataStoreNeighbours: [],
      datastoreCertsExists: false,
      credentialsMissingKeys: null,
      serviceAccountExists: false,
      cronJobHash: null,
      restoring: input.restoring,
      ...(input.shardLabels ? { shardLabels: input.shardLabels } : {}),
    };
    const hashOf = (cronJob: KubeObject | null) =>
      cronJob ? (cronJob.metadata?.annotations?.[ANNOTATIONS.specHash] ?? '') : null;
    if (!o.settings) {
      const cronJob = await deps.owned.get('cronJob', namespace, names.backupCronJob);
      return { o: { ...o, cronJobHash: hashOf(cronJob) }, cronJob };
    }
    // What must not run: the CronJob, if any, and Jobs still running.
    const stop = async () => {
      const cronJob = await deps.owned.get('cronJob', namespace, names.backupCronJob);
      const jobs = await deps.owned.backupJobs(namespace, name);
      o.cronJobHash = hashOf(cronJob);
      o.activeJobs = jobs
        .filter((j) => !j.metadata?.deletionTimestamp && !jobOutcome(j).result)
        .map((j) => j.metadata!.name!)
        .sort();
      return { o, cronJob };
    };
    const settings = o.settings;
    const endpoint = checkS3Endpoint(settings.s3Endpoint, platform);
    if (!endpoint.ok) o.endpointRefusal = endpoint.message;
    let credentials: Record<string, string> | undefined;
    const reads: Record<BackupRead, () => Promise<void>> = {
      dataStore: async () => {
        const ds = await dataStoreFacts(deps.kube, deps.tcpsOnDataStore, input.tcp);
        if (!ds.name) return;
        o.dataStoreName = ds.name;
        o.dataStore = ds.object
          ? { driver: ds.object.spec?.driver ?? '', endpoints: ds.object.spec?.endpoints ?? [] }
          : null;
        o.dataStoreNeighbours = ds.neighbours;
      },
      datastoreCerts: async () => {
        o.datastoreCertsExists =
          (await deps.kube.getOrNull(
            at(RESOURCES.secret, namespace, BACKUP_JOB.datastoreCertsSecret(names.tenantControlPlane)),
          )) !== null;
      },
      credentials: async () => {
        const bucket = await readBucketCredentials(deps.kube, namespace, settings.credentialSecret);
        o.credentialsMissingKeys = bucket?.missing ?? null;
        credentials = bucket?.credentials;
      },
    };
    const read = new Set<BackupRead>();
    for (const check of BACKUP_CHECKS) {
      if (check.needs && !read.has(check.needs)) {
        read.add(check.needs);
        await reads[check.needs]();
      }
      const blocked = check.blocks(o);
      if (blocked) return blocked.unsafe ? stop() : { o, cronJob: null };
    }
    o.serviceAccountExists = (await deps.owned.get('serviceAccount', namespace, names.backupServiceAccount)) !== null;
    const cronJob = await deps.owned.get('cronJob', namespace, names.backupCronJob);
    o.cronJobHash = hashOf(cronJob);
    if (cronJob) {
      const jobs = await deps.owned.backupJobs(namespace, name);
      const newest = jobs
        .sort(
          (a, b) =>
            (a.metadata!.creationTimestamp ?? '').localeCompare(b.metadata!.creationTimestamp ?? '') ||
            a.metadata!.name!.localeCompare(b.metadata!.name!),
        )
        .at(-1);
      if (newest) o.latestJob = jobOutcome(newest);
    }
    return { o, cronJob, credentials };
  }

  async function latest(
    input: BackupInput,
    o: ObservedBackup,
    credentials: Record<string, string> | undefined,
  ): Promise<{ latest?: { key: string; time: string }; error?: string }> {
    const previous =
      input.cluster.status?.latestBackupKey && input.cluster.status.latestBackupTime
        ? { key: input.cluster.status.latestBackupKey, time: input.cluster.status.latestBackupTime }
        : undefined;
    const job = o.latestJob;
    const key = `${o.namespace}/${o.cluster}`;
    const listed = listedFor.get(key);
    if (!credentials || !o.settings || !job?.result) return { ...(previous ? { latest: previous } : {}) };
    // Once per finished Job, whatever came of it: a bucket that failed the listing is not asked again until the next Job.
    if (listed?.job === job.name && (previous || listed.error))
      return { ...(previous ? { latest: previous } : {}), ...(listed.error ? { error: listed.error } : {}) };
    // A finished Job we have not accounted for: the bucket is the truth (a Job can fail after uploading).
    try {
      const found = await deps.latestBackup({
        namespace: o.namespace,
        cluster: o.cluster,
        bucket: o.settings.bucket,
        endpoint: o.settings.s3Endpoint,
        credentials,
      });
      listedFor.set(key, { job: job.name });
      const newest = found ?? previous;
      return newest ? { latest: newest } : {};
    } catch (error) {
      const message = (error as Error).message.slice(0, 500);
      deps.logger.warn(
        { cluster: key, bucket: o.settings.bucket, err: message },
        'cannot list backups; keeping the last known one',
      );
      listedFor.set(key, { job: job.name, error: message });
      return { ...(previous ? { latest: previous } : {}), error: message };
    }
  }

  async function execute(action: BackupAction, input: BackupInput, cronJob: KubeObject | null): Promise<void> {
    const { namespace, name } = input;
    const names = clusterNames(name);
    deps.countWrite(`backup:${action.kind}`);
    switch (action.kind) {
      case 'createServiceAccount':
        try {
          await deps.kube.create(at(RESOURCES.serviceAccount, namespace), action.object);
        } catch (error) {
          if (!isAlreadyExists(error)) throw error;
        }
        return;
      case 'writeCronJob': {
        const object = {
          ...action.object,
          metadata: { ...action.object.metadata, ownerReferences: [clusterOwner(input.cluster)] },
        } as KubeObject;
        if (cronJob) {
          await deps.kube.replace(
            { ...RESOURCES.cronJob, namespace, name: names.backupCronJob },
            { ...object, metadata: { ...object.metadata, resourceVersion: cronJob.metadata!.resourceVersion! } },
          );
          await deps.recorder.record(
            input.cluster,
            'Normal',
            'BackupCronJobUpdated',
            `updated CronJob ${names.backupCronJob} (schedule "${action.object.spec.schedule}")`,
          );
        } else {
          await deps.kube.create({ ...RESOURCES.cronJob, namespace }, object);
          await deps.recorder.record(
            input.cluster,
            'Normal',
            'BackupCronJobCreated',
            `created CronJob ${names.backupCronJob} (schedule "${action.object.spec.schedule}" UTC)`,
          );
        }
        return;
      }
      case 'deleteCronJob':
        await deps.kube
          .delete({ ...RESOURCES.cronJob, namespace, name: names.backupCronJob }, { propagationPolicy: 'Background' })
          .catch((error: unknown) => {
            if (!isNotFound(error)) throw error;
          });
        await deps.recorder.record(
          input.cluster,
          action.why === 'backups are disabled' ? 'Normal' : 'Warning',
          'BackupCronJobDeleted',
          `deleted CronJob ${names.backupCronJob} (${action.why}); existing backups are kept`,
        );
        return;
      case 'deleteJobs':
        for (const job of action.names) {
          await deps.kube
            .delete({ ...RESOURCES.job, namespace, name: job }, { propagationPolicy: 'Background' })
            .catch((error: unknown) => {
              if (!isNotFound(error)) throw error;
            });
        }
        await deps.recorder.record(
          input.cluster,
          'Warning',
          'BackupJobsDeleted',
          `stopped backup Job(s) ${action.names.join(', ')} (${action.why})`,
        );
        return;
      default:
    }
  }

  return async function reconcileBackup(input: BackupInput): Promise<BackupResult> {
    const settingsResult = resolveBackupSettings(
      input.namespace,
      input.name,
      input.spec,
      input.platform.s3Endpoint ?? '',
    );
    // Each change is observed again from the API (the CronJob's new hash, the Jobs left).
    const { observed } = await runPass<Observation, BackupAction>(
      {
        observe: () => observe(input, settingsResult),
        plan: (observation) => planBackup(observation.o).action,
        stops: (action) => action.kind === 'done',
        execute: async (action, observation) => {
          await execute(action, input, observation.cronJob);
          return undefined;
        },
        maxSteps: 4,
      },
      {
        onStep: (action) =>
          deps.logger.info(
            { cluster: `${input.namespace}/${input.name}`, action: action.kind },
            'backup reconcile step',
          ),
      },
    );
    const { o, credentials } = observed;
    const { latest: latestBackup, error: bucketError } = await latest(input, o, credentials);
    const condition = planBackup({
      ...o,
      ...(latestBackup ? { latestBackup } : {}),
      ...(bucketError ? { bucketError } : {}),
    }).condition;
    const settings = o.settings;
    return {
      condition,
      fields: {
        ...(settings ? { backupBucket: settings.bucket, backupDestinationPath: settings.destinationPath } : {}),
        ...(latestBackup ? { latestBackupKey: latestBackup.key, latestBackupTime: latestBackup.time } : {}),
      },
    };
  };
}
