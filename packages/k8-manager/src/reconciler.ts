import {
  ANNOTATIONS,
  KDC_CLUSTER_CONDITIONS,
  clusterNames,
  dataStoreLookup,
  decodeSecretData,
  kmsKeyTransitName,
  resolveKeyRefs,
  restoreActive,
  restoreRun,
  findCondition,
  gatherClusterFacts,
  isAttached,
  organizationLookup,
  platformConfigLookup,
  keySwitchPhase,
  nextPluginKeys,
  refusedKeyChange,
  runPass,
  shardLabels,
  splitKey,
  validateCluster,
  type Cache,
  type EventRecorder,
  type LabelSelector,
  type KeyChangeInput,
  type PluginSlot,
  type Informer,
  type KdcClusterStatus,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ReconcileResult,
  type TenantControlPlane,
  type Validation,
  at,
  RESOURCES,
  type KdcClusterObject,
  type KmsKeyObject,
  type TenantControlPlaneObject,
} from '@kdc/shared';
import { Counter, type Registry } from 'prom-client';
import { backupReconciler } from './backup/reconcile.ts';
import { restoreReconciler } from './restore/reconcile.ts';
import { s3InspectBackup, s3LatestBackup, type BackupInspector, type LatestBackupLookup } from './backup/bucket.ts';
import { clusterExecutor } from './execute.ts';
import { planCluster, providersOf, type ClusterAction, type ObservedCluster } from './plan.ts';
import { disableComplete } from './migration/providers.ts';
import { clusterStatus } from './status/cluster-status.ts';
import { writeClusterStatus } from './status/write.ts';
import type { TenantObservation } from './tenant/observe-tenant.ts';
import { controlPlaneOf } from './tenant/control-plane.ts';
import type { TcpPlacement, TcpsByDataStore } from './tenant/datastore.ts';
import { migrationReconciler, migrationState, type MigrationDeps } from './migration/reconcile.ts';
import { judgeRollout } from './migration/rollout.ts';
import { keySwitchEvents, recordedPluginKeys } from './key-switch/keys.ts';
import { requeueAfter } from './requeue.ts';
import { directReads, type OwnedReader } from './owned/owned-reads.ts';

export function k8ManagerMetrics(registry: Registry) {
  return {
    writes: new Counter({
      name: 'kdc_k8manager_writes_total',
      help: 'Writes made to reach the desired state, by action',
      labelNames: ['action'],
      registers: [registry],
    }),
    invalid: new Counter({
      name: 'kdc_k8manager_invalid_specs_total',
      help: 'Reconciles that refused a spec, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    ownedReads: new Counter({
      name: 'kdc_k8manager_owned_reads_total',
      help: 'Reads of the ServiceAccounts, CronJobs and Jobs made for clusters, by source (cache, or apiserver until the cache is seen to agree)',
      labelNames: ['source'],
      registers: [registry],
    }),
  };
}

export interface KdcClusterReconcilerDeps {
  kube: KubeClient;
  clusters: Informer<KdcClusterObject>;
  keys: Informer<KmsKeyObject>;
  /** This release's TenantControlPlanes, whole (selected by `shard` when sharded). */
  tcps: Cache<TenantControlPlaneObject>;
  /** Every TenantControlPlane's placement when sharded (absent: `tcps` holds them all). */
  placements?: Cache<TcpPlacement>;
  /** Every TCP (`placements`, or `tcps` unsharded) indexed by DataStore: backups and restores ask who shares one. */
  tcpsOnDataStore: TcpsByDataStore;
  /** CLUSTER_SELECTOR: the TCPs made or adopted carry the labels it reads (shardLabels). */
  shard?: LabelSelector;
  /** Namespaces, for their organisation label (absent: read through a short cache). */
  namespaces?: Informer<KubeObject>;
  recorder: EventRecorder;
  logger: Logger;
  metrics: ReturnType<typeof k8ManagerMetrics>;
  env: Record<string, string | undefined>;
  /** Namespace of the `master-config` Secret. */
  controllerNamespace: string;
  observeTenant: (
    namespace: string,
    cluster: string,
    tcp: TenantControlPlane,
    writer?: PluginSlot,
  ) => Promise<TenantObservation>;
  /** How often an encrypted, Ready cluster's tenant side is looked at again (key version, health). */
  observePeriodMs?: number;
  now?: () => Date;
  /** Newest backup in a cluster's bucket (default: the S3 listing). */
  latestBackup?: LatestBackupLookup;
  /** What a restore-from key names in the bucket (default: read through S3). */
  inspectBackup?: BackupInspector;
  /** The ServiceAccounts, CronJob and Jobs made for a cluster, read through caches (default: directReads). */
  owned?: OwnedReader;
  /** Re-writing rows until a scan proves them all current (absent: no migration runs). */
  migration?: Omit<MigrationDeps, 'recorder' | 'logger' | 'now'>;
}

type Cluster = KubeObject & { spec?: unknown; status?: KdcClusterStatus };
const MAX_STEPS = 10;

const keyIdOf = (key: KubeObject | undefined) => (key?.status as { keyId?: string } | undefined)?.keyId;

/** The EncryptionConfiguration hash k8-manager put on the TCP's pod template: every replica must carry it. */
const configHashOf = (tcp: TenantControlPlane) =>
  tcp.spec.controlPlane.deployment?.podAdditionalMetadata?.annotations?.[ANNOTATIONS.encryptionConfigHash] ?? '';

/** Reads, asks planCluster for the next change until there is none, then writes status if it changed. */
export function kdcClusterReconciler(deps: KdcClusterReconcilerDeps) {
  const now = deps.now ?? (() => new Date());
  const platformConfig = platformConfigLookup(deps.kube, deps.controllerNamespace, deps.env);
  const migrate = deps.migration
    ? migrationReconciler({ ...deps.migration, recorder: deps.recorder, logger: deps.logger, now })
    : undefined;
  const organizationOf = organizationLookup(deps.kube, { namespaces: deps.namespaces });
  const dataStoreOf = dataStoreLookup(deps.kube);
  const owned = deps.owned ?? directReads(deps.kube);
  const reconcileBackup = backupReconciler({
    kube: deps.kube,
    tcpsOnDataStore: deps.tcpsOnDataStore,
    owned,
    keys: deps.keys,
    recorder: deps.recorder,
    logger: deps.logger,
    latestBackup: deps.latestBackup ?? s3LatestBackup,
    countWrite: (action) => deps.metrics.writes.inc({ action }),
  });
  const reconcileRestore = restoreReconciler({
    kube: deps.kube,
    tcpsOnDataStore: deps.tcpsOnDataStore,
    recorder: deps.recorder,
    logger: deps.logger,
    inspectBackup: deps.inspectBackup ?? s3InspectBackup,
    countWrite: (action) => deps.metrics.writes.inc({ action }),
    now,
  });
  /** The Transit key of the cluster's backup KMSKey: a restore takes only backups wrapped by it. */
  const backupTransitKey = (namespace: string, name: string, v: Extract<Validation, { ok: true }>) => {
    const ref = v.backupKeyRef ?? resolveKeyRefs(name, v.spec).backup;
    return kmsKeyTransitName(namespace, ref, keyIdOf(deps.keys.get(ref, namespace)));
  };
  const execute = clusterExecutor({
    kube: deps.kube,
    recorder: deps.recorder,
    countWrite: (action) => deps.metrics.writes.inc({ action }),
  });

  return async function reconcile(key: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const cluster = deps.clusters.get(name, namespace) as Cluster | undefined;
    if (!cluster || !namespace || cluster.metadata?.deletionTimestamp) return {};
    const names = clusterNames(name);
    const generation = cluster.metadata?.generation ?? 0;
    const tcp = await controlPlaneOf(deps, names.tenantControlPlane, namespace);
    const validation = validateCluster(
      await gatherClusterFacts({
        cluster,
        clusters: deps.clusters.list(namespace),
        kmsKey: (key) => deps.keys.get(key, namespace),
        tcp,
        platform: await platformConfig(),
        dataStoreOf,
        now: now(),
      }),
    );
    const previousError = findCondition(cluster.status?.conditions, KDC_CLUSTER_CONDITIONS.encryptionConfigError);
    // status.restore says whether a run is on; the annotations only show it.
    const restoreRunning = restoreActive(restoreRun(cluster.metadata?.annotations, cluster.status));

    // The plugin instances and their keys (plugin-keys.ts): a new keyRef is switched to through
    // two instances side by side, or refused while rows are being migrated.
    const enabledNow = validation.ok && validation.spec.encryption?.etcd.enabled === true;
    const desiredEtcdKeyId =
      validation.ok && validation.etcdKeyRef ? keyIdOf(deps.keys.get(validation.etcdKeyRef, namespace)) : undefined;
    const keyChange: KeyChangeInput = {
      keys: recordedPluginKeys(cluster.status, tcp, tcp !== null && isAttached(tcp)),
      desired:
        enabledNow && validation.ok && validation.etcdKeyRef
          ? {
              keyRef: validation.etcdKeyRef,
              transitKey: kmsKeyTransitName(namespace, validation.etcdKeyRef, desiredEtcdKeyId),
            }
          : undefined,
      migrating: cluster.status?.encryption?.migration !== undefined,
    };
    const pluginKeys = keyChange.keys.length
      ? keyChange.keys
      : nextPluginKeys({ ...keyChange, rolledOut: false, proven: false });
    const refusedKey = refusedKeyChange(keyChange);

    const base: ObservedCluster = {
      namespace,
      name,
      generation,
      validation,
      tcp,
      shardLabels: shardLabels(deps.shard, cluster.metadata?.labels),
      pluginKeys,
      organization: await organizationOf(namespace),
      autoKey: (deps.keys.get(names.autoEtcdKey, namespace) as ObservedCluster['autoKey']) ?? null,
      etcdKeyId: desiredEtcdKeyId,
      serviceAccountExists: false,
      secretData: undefined,
      preflight: findCondition(cluster.status?.conditions, KDC_CLUSTER_CONDITIONS.kmsPreflight),
      providerState: cluster.status?.encryption,
    };
    const pass = await runPass<ObservedCluster, ClusterAction>(
      {
        // Only read what the plan needs: an unencrypted cluster costs no extra reads.
        observe: async () =>
          !enabledNow || planCluster(base).kind === 'createTenantControlPlane'
            ? base
            : {
                ...base,
                serviceAccountExists:
                  (await owned.get('serviceAccount', namespace, names.kmsPluginServiceAccount)) !== null,
                secretData: decodeSecretData(
                  await deps.kube.getOrNull(at(RESOURCES.secret, namespace, names.encryptionConfigSecret)),
                ),
              },
        plan: planCluster,
        stops: (a) => a.kind === 'done' || a.kind === 'invalid' || a.kind === 'waitForPreflight',
        execute: (a, o) => execute(a, cluster, o),
        maxSteps: MAX_STEPS,
      },
      { signal, onStep: (a) => deps.logger.info({ cluster: key, action: a.kind }, 'reconcile step') },
    );
    const { observed, step: action } = pass;

    if (!validation.ok) {
      const first = validation.errors[0]!;
      deps.metrics.invalid.inc({ reason: first.reason });
      if (
        previousError?.status !== 'True' ||
        previousError.reason !== first.reason ||
        previousError.observedGeneration !== generation
      ) {
        await deps.recorder.record(
          cluster,
          'Warning',
          'EncryptionConfigError',
          validation.errors.map((e) => e.message).join('; '),
        );
      }
    }
    // Said on every reconcile while the annotation stays, not once (SPEC 5): this pass detached, or an earlier one did.
    const forceDisabled =
      validation.ok && (validation.forceDisabled || (validation.forceDisable && !isAttached(observed.tcp)));
    if (forceDisabled) {
      await deps.recorder.record(
        cluster,
        'Warning',
        'ForceDisabled',
        `KMS is detached by ${ANNOTATIONS.forceDisableConfirmed} without the disable migration: rows still encrypted cannot be read; remove the annotation to end this warning`,
      );
    }

    const enabled = enabledNow;
    const writer = pluginKeys.find((k) => k.mode === 'write');
    // What the cluster encrypts with now (the spec's keyRef once a switch to it is through).
    const etcdKeyRef = writer?.keyRef ?? (validation.ok ? validation.etcdKeyRef : undefined);
    const etcdKey = etcdKeyRef
      ? (deps.keys.get(etcdKeyRef, namespace) as Parameters<typeof clusterStatus>[0]['etcdKey'])
      : undefined;
    const providers = providersOf(observed);
    const attached = observed.tcp !== null && isAttached(observed.tcp);
    // After the disable migration KMS is detached: there is no plugin to look at and no row to move.
    const decrypted =
      providers !== undefined &&
      validation.ok &&
      disableComplete(providers, validation.spec.encryption?.etcd.disableRequested === true) &&
      !attached;
    const tenant =
      enabled && !decrypted && action.kind === 'done' && observed.tcp
        ? await deps.observeTenant(namespace, name, observed.tcp, writer?.slot)
        : undefined;
    const rollout =
      tenant?.controlPlaneReady && observed.tcp
        ? judgeRollout({
            desiredHash: configHashOf(observed.tcp),
            replicas: tenant.replicas ?? [],
            kmsProvidersHealthy: tenant.kmsProvidersHealthy === true,
          })
        : undefined;
    // One migration step (a scan, or a page of re-writes) per reconcile, never during a restore.
    const migration =
      validation.ok && providers && rollout && observed.tcp && migrate && !restoreRunning
        ? await migrate({
            signal,
            cluster,
            namespace,
            spec: validation.spec,
            tcp: observed.tcp,
            providers,
            configHash: configHashOf(observed.tcp),
            rollout,
            switching: keySwitchPhase(pluginKeys) === 'promoted',
            ...(tenant?.client ? { client: tenant.client } : {}),
            ...migrationState(cluster.status),
          })
        : undefined;
    // The next phase of a key switch, from what this reconcile saw: the config it wrote rolled out, a scan proved the rows.
    const nextKeys =
      enabled && !decrypted
        ? nextPluginKeys({
            ...keyChange,
            keys: pluginKeys,
            rolledOut: action.kind === 'done' && rollout?.ready === true,
            proven: migration?.settled === true && !restoreRunning,
          })
        : [];
    for (const event of enabled ? keySwitchEvents(pluginKeys, nextKeys, refusedKey, cluster.status) : [])
      await deps.recorder.record(cluster, event.type, event.reason, event.message);
    const backup =
      enabled && validation.ok && action.kind === 'done' && observed.tcp
        ? await reconcileBackup({
            cluster,
            namespace,
            name,
            spec: validation.spec,
            platform: validation.platform!,
            organization: observed.organization,
            tcp: observed.tcp,
            shardLabels: observed.shardLabels,
            restoring: restoreRunning,
          })
        : undefined;
    const restore =
      validation.ok && validation.platform && observed.tcp
        ? await reconcileRestore({
            cluster,
            namespace,
            name,
            spec: validation.spec,
            platform: validation.platform,
            organization: observed.organization,
            tcp: observed.tcp,
            backupTransitKey: backupTransitKey(namespace, name, validation),
          })
        : undefined;
    const status = clusterStatus({
      generation,
      previous: cluster.status,
      validation,
      outcome: action,
      etcdKey,
      tenant,
      migration,
      providers,
      attached,
      forceDisabled,
      now: now(),
      ...(observed.tcp ? { configHash: configHashOf(observed.tcp) } : {}),
      keys: { current: nextKeys, ...(refusedKey ? { refused: refusedKey } : {}) },
      ...(backup ? { backup } : {}),
      ...(restore ? { restore } : {}),
    });
    // Written against the copy we read (or the restore last wrote): if the other controller wrote meanwhile, this conflicts and retries.
    const wrote = await writeClusterStatus(deps.kube, restore?.cluster ?? cluster, status);
    return requeueAfter({
      restoreActive: restore?.active === true,
      enabled,
      forceDisabled,
      kmsPluginReady: status.encryption?.kmsPluginReady === true,
      controlPlaneReady: tenant?.controlPlaneReady,
      waitingForPreflight: action.kind === 'waitForPreflight',
      migrationRequeueMs: migration?.requeueAfterMs,
      statusWritten: wrote,
      observePeriodMs: deps.observePeriodMs ?? 30_000,
    });
  };
}
