import {
  ANNOTATIONS,
  checkS3Endpoint,
  clusterNames,
  isRestoreFinished,
  rfc3339,
  resolveBackupSettings,
  restoreRun,
  runPass,
  type EventRecorder,
  type KdcClusterSpec,
  type KdcClusterStatus,
  type KubeClient,
  type KubeObject,
  type Logger,
  type PlatformConfig,
  type RestoreStatus,
  type TenantControlPlane,
  RESOURCES,
} from '@kdc/shared';
import type { BackupInspector } from '../backup/bucket.ts';
import { jobOutcome, type Job } from '../backup/jobs.ts';
import { clusterOwner } from '../refs.ts';
import { planRestore, restoreCondition, type ObservedRestore, type RestoreAction } from './plan.ts';
import { buildRestoreJob } from '../resources/restore-job.ts';
import { restoreObserver } from './observe.ts';
import type { TcpsByDataStore } from '../tenant/datastore.ts';

// The imperative shell of the restore state machine: reads what planRestore needs, applies its
// one change, and records the state in status.restore, which the tenant cannot write (every state
// change is a compare-and-swap on the resourceVersion it read). The kube-dc.com/restore-state,
// -failure and -state-since annotations are written after it, to show progress, and never read
// back as state: a request is kube-dc.com/restore-from alone, validated from scratch.

export interface RestoreReconcilerDeps {
  kube: KubeClient;
  tcpsOnDataStore: TcpsByDataStore;
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
  fields: Pick<KdcClusterStatus, 'latestRestoreKey' | 'latestRestoreTime' | 'restore'>;
  /** A restore is running: look again soon (StatefulSets and Jobs are not watched). */
  active: boolean;
  /** The KdcCluster as this pass last wrote it: a later status write must start from its resourceVersion. */
  cluster: KubeObject & { status?: KdcClusterStatus };
}

type Cluster = RestoreInput['cluster'];

export function restoreReconciler(deps: RestoreReconcilerDeps) {
  const { validateBackup, observeEtcd } = restoreObserver(deps);

  return async function reconcileRestore(input: RestoreInput): Promise<RestoreResult> {
    let current: Cluster = input.cluster;
    const status = current.status;
    const previousFields = {
      ...(status?.latestRestoreKey ? { latestRestoreKey: status.latestRestoreKey } : {}),
      ...(status?.latestRestoreTime ? { latestRestoreTime: status.latestRestoreTime } : {}),
      ...(status?.restore ? { restore: status.restore } : {}),
    };
    const annotations = current.metadata?.annotations ?? {};
    const run = restoreRun(annotations, status);
    if (!run) return { fields: previousFields, active: false, cluster: current };
    const key = run.key;
    const names = clusterNames(input.name);
    const ref = { ...RESOURCES.kdcCluster, namespace: input.namespace, name: input.name };
    let record: RestoreStatus | undefined = run.fresh || !status?.restore ? undefined : status.restore;

    /** Shows `r` in the annotations (only what differs). */
    const show = async (r: RestoreStatus) => {
      const shown = current.metadata?.annotations ?? {};
      const want: Record<string, string | null> = {
        [ANNOTATIONS.restoreState]: r.state ?? null,
        [ANNOTATIONS.restoreFailure]: r.failure ?? null,
        [ANNOTATIONS.restoreStateSince]: r.since ?? null,
      };
      if (Object.entries(want).every(([k, v]) => (shown[k] ?? null) === v)) return;
      current = await deps.kube.patch<Cluster>(ref, { metadata: { annotations: want } }, 'merge');
    };
    /** Records `r` in status.restore, compare-and-swap on what this pass last read or wrote. */
    const save = async (r: RestoreStatus) => {
      current = await deps.kube.replace<Cluster>(
        { ...ref, subresource: 'status' },
        {
          ...current,
          status: { ...current.status, restore: r },
        },
      );
      record = r;
      await show(r);
    };

    const tcpStatus = (
      input.tcp.status as
        { kubernetesResources?: { version?: { status?: string }; deployment?: { readyReplicas?: number } } } | undefined
    )?.kubernetesResources;
    // A run finished by a controller from before status.restore: what the annotations show, for the condition only.
    const legacyFailure = !run.fresh && !record ? annotations[ANNOTATIONS.restoreFailure] : undefined;
    const since = Date.parse(record?.since ?? '');
    let o: ObservedRestore = {
      requestedKey: key,
      ...(!run.fresh && run.state ? { state: run.state } : {}),
      ...(record?.failure ? { failure: record.failure } : legacyFailure ? { failure: legacyFailure } : {}),
      desiredReplicas: input.spec.controlPlane.replicas,
      tcpReplicas: input.tcp.spec.controlPlane.deployment?.replicas,
      tcpReadyReplicas: tcpStatus?.deployment?.readyReplicas ?? 0,
      tcpReady: tcpStatus?.version?.status === 'Ready',
      restoreJob: null,
      ...(Number.isFinite(since) ? { stateAgeMs: deps.now().getTime() - since } : {}),
    };
    // The annotations show the record, whatever was written into them since.
    if (record) await show(record);
    let succeeded: string | undefined;

    async function execute(action: RestoreAction): Promise<ObservedRestore> {
      deps.countWrite(`restore:${action.kind}`);
      switch (action.kind) {
        case 'setState': {
          const failure = action.failure ?? (action.state === 'Validating' ? undefined : o.failure);
          await save({ key, state: action.state, since: rfc3339(deps.now()), ...(failure ? { failure } : {}) });
          if (action.state === 'Succeeded') succeeded = rfc3339(deps.now());
          const warning = action.state === 'Failed' || (action.failure !== undefined && !o.failure);
          await deps.recorder.record(
            current,
            warning ? 'Warning' : 'Normal',
            action.state === 'Failed'
              ? 'RestoreFailed'
              : action.state === 'Succeeded'
                ? 'RestoreSucceeded'
                : 'RestoreProgress',
            `restore from "${key}": ${action.state}${action.failure ? ` (${action.failure})` : ''}`,
          );
          return { ...o, state: action.state, stateAgeMs: 0, ...(failure ? { failure } : { failure: undefined }) };
        }
        case 'scaleControlPlane':
          await deps.kube.patch(
            { ...RESOURCES.tenantControlPlane, namespace: input.namespace, name: names.tenantControlPlane },
            { spec: { controlPlane: { deployment: { replicas: action.replicas } } } },
            'merge',
          );
          return { ...o, tcpReplicas: action.replicas };
        case 'scaleEtcd': {
          const sts = o.etcd?.statefulSet;
          // planRestore never asks for this without a StatefulSet; if it did, end the run rather than write to a collection.
          if (!sts)
            return execute({
              kind: 'setState',
              state: 'Failed',
              failure: `EtcdStatefulSetMissing: ${o.etcd?.missing ?? 'no etcd StatefulSet to scale'}`,
            });
          await deps.kube.patch(
            { ...RESOURCES.statefulSet, namespace: input.namespace, name: sts },
            { spec: { replicas: action.replicas } },
            'merge',
          );
          return { ...o, etcd: { ...o.etcd!, specReplicas: action.replicas } };
        }
        case 'createRestoreJob': {
          const settings = resolveBackupSettings(
            input.namespace,
            input.name,
            input.spec,
            input.platform.s3Endpoint ?? '',
          );
          const allowed = settings?.ok && checkS3Endpoint(settings.settings.s3Endpoint, input.platform).ok;
          if (!settings?.ok || !allowed || !o.etcd?.ok || !input.platform.backupImage) {
            return execute({
              kind: 'setState',
              state: 'StartingEtcd',
              failure:
                'RestoreJobFailed: the restore Job cannot be built (backup settings or endpoint, backup image or etcd layout changed since Validating)',
            });
          }
          const job = buildRestoreJob({
            namespace: input.namespace,
            cluster: input.name,
            key,
            settings: settings.settings,
            image: input.platform.backupImage,
            openBaoUrl: input.platform.openBaoUrl,
            ...(input.organization ? { openBaoNamespace: input.organization } : {}),
            hasCaBundle: Boolean(input.platform.openBaoCaBundle),
            transitKey: input.backupTransitKey,
            // Validating let a plaintext key through only with the person's confirmation.
            allowUnauthenticated: key.endsWith('.db'),
            layout: o.etcd.layout,
          });
          await deps.kube.create(
            { ...RESOURCES.job, namespace: input.namespace },
            {
              ...job,
              metadata: { ...job.metadata, ownerReferences: [clusterOwner(current)] },
            },
          );
          return { ...o, restoreJob: { name: names.restoreJob } };
        }
        case 'deleteRestoreJob':
          await deps.kube.delete(
            { ...RESOURCES.job, namespace: input.namespace, name: names.restoreJob },
            { propagationPolicy: 'Background' },
          );
          return { ...o, restoreJob: null };
        default:
          return o;
      }
    }

    const pass = await runPass<ObservedRestore, RestoreAction>(
      {
        // Before every step: the Job, the etcd StatefulSet and the backup as they are now (neither is
        // watched), over what the steps of this pass changed. An ended run reads nothing.
        observe: async () => {
          if (isRestoreFinished(o.state)) return o;
          const job = await deps.kube.getOrNull<Job>({
            ...RESOURCES.job,
            namespace: input.namespace,
            name: names.restoreJob,
          });
          o = { ...o, restoreJob: job ? jobOutcome(job) : null };
          if (o.state && o.state !== 'DrainingControlPlane') o = { ...o, etcd: await observeEtcd(input) };
          if (o.state === 'Validating') o = { ...o, backup: await validateBackup(input, key) };
          return o;
        },
        plan: planRestore,
        stops: (action) => action.kind === 'idle' || action.kind === 'wait',
        execute: async (action) => {
          o = await execute(action);
          return undefined;
        },
        // Scaling is observed on the next pass, from the objects' status.
        endsPass: (action) => action.kind === 'scaleControlPlane' || action.kind === 'scaleEtcd',
        maxSteps: 8,
      },
      {
        onStep: (action) =>
          deps.logger.info(
            { cluster: `${input.namespace}/${input.name}`, state: o.state, action: action.kind },
            'restore step',
          ),
      },
    );
    if (pass.step.kind === 'wait')
      deps.logger.debug(
        { cluster: `${input.namespace}/${input.name}`, state: o.state, wait: pass.step.message },
        'restore waiting',
      );
    const fields = {
      ...previousFields,
      ...(succeeded ? { latestRestoreKey: key, latestRestoreTime: succeeded } : {}),
      ...(record ? { restore: record } : {}),
    };
    return {
      condition: restoreCondition(key, o.state, o.failure),
      fields,
      active: !isRestoreFinished(o.state),
      cluster: current,
    };
  };
}
