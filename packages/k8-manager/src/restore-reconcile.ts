import {
  ANNOTATIONS, BACKUP_CREDENTIAL_KEYS, RESTORE_STATES,
  clusterNames, rfc3339, resolveBackupSettings,
  type EventRecorder, type Informer, type KdcClusterSpec, type KdcClusterStatus, type KubeClient, type KubeObject, type Logger,
  type PlatformConfig, type RestoreState, type TenantControlPlane,
} from '@kdc/shared';
import { readBucketCredentials, type BackupInspector } from './bucket.ts';
import { dataStoreFacts } from './datastore.ts';
import { etcdLayout, type EtcdStatefulSet } from './etcd-layout.ts';
import { jobOutcome, type Job } from './jobs.ts';
import { JOB_REF, KDCCLUSTER_REF, STATEFULSET_REF, TCP_REF, clusterOwner } from './refs.ts';
import { planRestore, restoreCondition, type ObservedRestore, type RestoreAction } from './restore-plan.ts';
import { buildRestoreJob } from './resources/restore-job.ts';

// The imperative shell of the restore state machine: reads what planRestore needs, applies its
// one change, records the state in the KdcCluster's annotations and reports RestoreReady.

export interface RestoreReconcilerDeps {
  kube: KubeClient;
  tcps: Informer<KubeObject>;
  recorder: EventRecorder;
  logger: Logger;
  inspectBackup: BackupInspector;
  countWrite: (action: string) => void;
  now: () => Date;
}

export interface RestoreInput {
  cluster: KubeObject & { status?: KdcClusterStatus };
  namespace: string;
  name: string;
  spec: KdcClusterSpec;
  platform: PlatformConfig;
  organization?: string;
  tcp: TenantControlPlane;
  /** The Transit key of the cluster's backup KMSKey: only backups wrapped by it are restored. */
  backupTransitKey: string;
}

export interface RestoreResult {
  /** Undefined: no restore was ever requested (the condition is left as it is). */
  condition?: ReturnType<typeof restoreCondition>;
  fields: Pick<KdcClusterStatus, 'latestRestoreKey' | 'latestRestoreTime'>;
  /** A restore is running: look again soon (StatefulSets and Jobs are not watched). */
  active: boolean;
}

const isState = (value: string | undefined): value is RestoreState => (RESTORE_STATES as readonly string[]).includes(value ?? '');

export function restoreReconciler(deps: RestoreReconcilerDeps) {
  async function validateBackup(input: RestoreInput, key: string): Promise<ObservedRestore['backup']> {
    const refuse = (reason: string, message: string) => ({ ok: false as const, reason, message });
    const { parseBackupKey } = await import('@kdc/backup-envelope');
    const parsed = parseBackupKey(key);
    if (!parsed) return refuse('InvalidKey', `"${key}" is neither <cluster>/<cluster>-<timestamp>/ (an envelope backup) nor <cluster>/<cluster>-<timestamp>.db (a plaintext one)`);
    if (parsed.cluster !== input.name) return refuse('ForeignKey', `"${key}" is a backup of cluster ${parsed.cluster}, not of ${input.name}`);
    const settings = resolveBackupSettings(input.namespace, input.name, input.spec, input.platform.s3Endpoint ?? '');
    if (!settings?.ok) return refuse('BackupDisabled', 'spec.backup is disabled or invalid: the bucket to restore from is unknown');
    const bucket = await readBucketCredentials(deps.kube, input.namespace, settings.settings.credentialSecret);
    if (!bucket || bucket.missing.length) {
      return refuse('S3NotAvailable', `Secret ${input.namespace}/${settings.settings.credentialSecret} with ${BACKUP_CREDENTIAL_KEYS.accessKeyId} and ${BACKUP_CREDENTIAL_KEYS.secretAccessKey} is needed to read the backup`);
    }
    let found;
    try {
      found = await deps.inspectBackup({ cluster: input.name, bucket: settings.settings.bucket, endpoint: settings.settings.s3Endpoint, credentials: bucket.credentials, key });
    } catch (error) {
      return refuse('BackupUnreadable', `cannot read s3://${settings.settings.bucket}/${key}: ${(error as Error).message}`);
    }
    if (!found.found) return refuse('BackupNotFound', `s3://${settings.settings.bucket}/${key} does not exist or is incomplete (no metadata.json)`);
    const expected = input.backupTransitKey;
    if (found.kind === 'envelope' && found.transitKey !== expected) {
      return refuse('ForeignKey', `the backup's data key is wrapped by Transit key ${found.transitKey}, not by this cluster's backup key ${expected}`);
    }
    return { ok: true };
  }

  async function observeEtcd(input: RestoreInput): Promise<{ etcd: NonNullable<ObservedRestore['etcd']>; sts: string | null }> {
    const unmanaged = (reason: string, message: string) => ({ etcd: { ok: false as const, reason, message, specReplicas: 0, runningReplicas: 0, readyReplicas: 0 }, sts: null });
    const ds = await dataStoreFacts(deps.kube, deps.tcps, input.tcp);
    if (!ds.name || !ds.object) return unmanaged('DataStoreUnknown', `the DataStore of TenantControlPlane ${input.tcp.metadata.name} is not known`);
    if (ds.neighbours.length) return unmanaged('SharedDataStore', `DataStore ${ds.name} also serves ${ds.neighbours.join(', ')}: restoring its etcd would roll their data back too`);
    const ref = ds.object.metadata?.annotations?.[ANNOTATIONS.etcdStatefulSet];
    if (!ref) return unmanaged('DataStoreUnmanaged', `DataStore ${ds.name} has no ${ANNOTATIONS.etcdStatefulSet} annotation naming the StatefulSet that runs its etcd`);
    const [stsNamespace, stsName] = ref.includes('/') ? ref.split('/') as [string, string] : [input.namespace, ref];
    if (stsNamespace !== input.namespace) return unmanaged('DataStoreUnmanaged', `the etcd StatefulSet ${ref} of DataStore ${ds.name} must run in the cluster's namespace ${input.namespace}`);
    const sts = await deps.kube.getOrNull<KubeObject & EtcdStatefulSet>({ ...STATEFULSET_REF, namespace: stsNamespace, name: stsName });
    if (!sts) return unmanaged('DataStoreUnmanaged', `StatefulSet ${ref} (from DataStore ${ds.name}) does not exist`);
    const layout = etcdLayout(sts);
    return { etcd: { ...layout, specReplicas: sts.spec?.replicas ?? 1, runningReplicas: sts.status?.replicas ?? 0, readyReplicas: sts.status?.readyReplicas ?? 0 }, sts: stsName };
  }

  async function setAnnotations(input: RestoreInput, annotations: Record<string, string | null>): Promise<void> {
    await deps.kube.patch({ ...KDCCLUSTER_REF, namespace: input.namespace, name: input.name }, { metadata: { annotations } }, 'merge');
  }

  async function execute(action: RestoreAction, input: RestoreInput, o: ObservedRestore, sts: string | null, key: string): Promise<ObservedRestore> {
    const names = clusterNames(input.name);
    deps.countWrite(`restore:${action.kind}`);
    switch (action.kind) {
      case 'setState': {
        const failure = action.failure ?? (action.state === 'Validating' ? undefined : o.failure);
        await setAnnotations(input, { [ANNOTATIONS.restoreState]: action.state, [ANNOTATIONS.restoreFailure]: failure ?? null, [ANNOTATIONS.restoreStateSince]: rfc3339(deps.now()) });
        const warning = action.state === 'Failed' || (action.failure !== undefined && !o.failure);
        await deps.recorder.record(input.cluster, warning ? 'Warning' : 'Normal', action.state === 'Failed' ? 'RestoreFailed' : action.state === 'Succeeded' ? 'RestoreSucceeded' : 'RestoreProgress',
          `restore from "${key}": ${action.state}${action.failure ? ` (${action.failure})` : ''}`);
        return { ...o, state: action.state, stateAgeMs: 0, ...(failure ? { failure } : { failure: undefined }) };
      }
      case 'scaleControlPlane':
        await deps.kube.patch({ ...TCP_REF, namespace: input.namespace, name: names.tenantControlPlane }, { spec: { controlPlane: { deployment: { replicas: action.replicas } } } }, 'merge');
        return { ...o, tcpReplicas: action.replicas };
      case 'scaleEtcd':
        await deps.kube.patch({ ...STATEFULSET_REF, namespace: input.namespace, name: sts! }, { spec: { replicas: action.replicas } }, 'merge');
        return { ...o, etcd: { ...o.etcd!, specReplicas: action.replicas } };
      case 'createRestoreJob': {
        const settings = resolveBackupSettings(input.namespace, input.name, input.spec, input.platform.s3Endpoint ?? '');
        if (!settings?.ok || !o.etcd?.ok || !input.platform.backupImage) {
          return execute({ kind: 'setState', state: 'StartingEtcd', failure: 'RestoreJobFailed: the restore Job cannot be built (backup settings, backup image or etcd layout missing)' }, input, o, sts, key);
        }
        const job = buildRestoreJob({
          namespace: input.namespace, cluster: input.name, key, settings: settings.settings, image: input.platform.backupImage,
          openBaoUrl: input.platform.openBaoUrl, ...(input.organization ? { openBaoNamespace: input.organization } : {}),
          hasCaBundle: Boolean(input.platform.openBaoCaBundle), transitKey: input.backupTransitKey,
          layout: o.etcd.layout, shellImage: input.platform.socketInitImage,
        });
        await deps.kube.create({ ...JOB_REF, namespace: input.namespace }, { ...job, metadata: { ...job.metadata, ownerReferences: [clusterOwner(input.cluster)] } } as KubeObject);
        return { ...o, restoreJob: { name: names.restoreJob } };
      }
      case 'deleteRestoreJob':
        await deps.kube.delete({ ...JOB_REF, namespace: input.namespace, name: names.restoreJob }, { propagationPolicy: 'Background' });
        return { ...o, restoreJob: null };
      default:
        return o;
    }
  }

  return async function reconcileRestore(input: RestoreInput): Promise<RestoreResult> {
    const annotations = input.cluster.metadata?.annotations ?? {};
    const key = annotations[ANNOTATIONS.restoreFrom]?.trim();
    const previousFields = { ...(input.cluster.status?.latestRestoreKey ? { latestRestoreKey: input.cluster.status.latestRestoreKey } : {}), ...(input.cluster.status?.latestRestoreTime ? { latestRestoreTime: input.cluster.status.latestRestoreTime } : {}) };
    if (!key) return { fields: previousFields, active: false };
    const rawState = annotations[ANNOTATIONS.restoreState];
    const names = clusterNames(input.name);
    const tcpStatus = (input.tcp.status as { kubernetesResources?: { version?: { status?: string }; deployment?: { readyReplicas?: number } } } | undefined)?.kubernetesResources;
    let o: ObservedRestore = {
      requestedKey: key,
      ...(isState(rawState) ? { state: rawState } : {}),
      ...(annotations[ANNOTATIONS.restoreFailure] ? { failure: annotations[ANNOTATIONS.restoreFailure] } : {}),
      desiredReplicas: input.spec.controlPlane.replicas,
      tcpReplicas: input.tcp.spec.controlPlane.deployment?.replicas,
      tcpReadyReplicas: tcpStatus?.deployment?.readyReplicas ?? 0,
      tcpReady: tcpStatus?.version?.status === 'Ready',
      restoreJob: null,
      ...(Number.isFinite(Date.parse(annotations[ANNOTATIONS.restoreStateSince] ?? '')) ? { stateAgeMs: deps.now().getTime() - Date.parse(annotations[ANNOTATIONS.restoreStateSince]!) } : {}),
    };
    if (rawState && !isState(rawState)) {
      o = await execute({ kind: 'setState', state: 'Failed', failure: `UnknownState: ${ANNOTATIONS.restoreState} "${rawState}" is not a restore state; remove it and set ${ANNOTATIONS.restoreFrom} again` }, input, o, null, key);
    }
    let sts: string | null = null;
    for (let step = 0; step < 8; step++) {
      if (o.state === 'Succeeded' || o.state === 'Failed') break;
      const job = await deps.kube.getOrNull<Job>({ ...JOB_REF, namespace: input.namespace, name: names.restoreJob });
      o = { ...o, restoreJob: job ? jobOutcome(job) : null };
      if (o.state && o.state !== 'DrainingControlPlane') {
        const etcd = await observeEtcd(input);
        o = { ...o, etcd: etcd.etcd };
        sts = etcd.sts;
      }
      if (o.state === 'Validating') o = { ...o, backup: await validateBackup(input, key) };
      const action = planRestore(o);
      if (action.kind === 'idle' || action.kind === 'wait') {
        if (action.kind === 'wait') deps.logger.debug({ cluster: `${input.namespace}/${input.name}`, state: o.state, wait: action.message }, 'restore waiting');
        break;
      }
      deps.logger.info({ cluster: `${input.namespace}/${input.name}`, state: o.state, action: action.kind }, 'restore step');
      o = await execute(action, input, o, sts, key);
      // Scaling is observed on the next pass, from the objects' status.
      if (action.kind === 'scaleControlPlane' || action.kind === 'scaleEtcd') break;
    }
    const done = o.state === 'Succeeded';
    const fields = done && input.cluster.status?.latestRestoreKey !== key
      ? { latestRestoreKey: key, latestRestoreTime: rfc3339(deps.now()) }
      : previousFields;
    return { condition: restoreCondition(key, o.state, o.failure), fields, active: o.state !== 'Succeeded' && o.state !== 'Failed' };
  };
}

