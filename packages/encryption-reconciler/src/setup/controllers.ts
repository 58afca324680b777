// The three controllers registered with the manager (controller-runtime's SetupWithManager): what
// each reconciles, what it watches, and the loop settings they share.
import {
  DriftClock,
  OpenBaoClient,
  organizationView,
  platformConfigLookup,
  RESOURCES,
  tcpAttachmentView,
  tokenKeeperFromEnv,
  type Informer,
  type KdcClusterObject,
  type KmsKeyObject,
  type KubeObject,
  type Manager,
  type TcpAttachment,
} from '@kdc/shared';
import { cleanupMetrics, cleanupReconciler } from '../cleanup/reconciler.ts';
import { CLEANUP_LABEL, CONFIGMAPS } from '../cleanup/tasks.ts';
import { clusterAccessMetrics, clusterAccessReconciler, clustersUsingKey } from '../cluster/reconciler.ts';
import { transitKeyLookup } from '../cluster/transit-keys.ts';
import { kmsKeyMetrics, kmsKeyReconciler } from '../kmskey/reconciler.ts';
import { ownsKmsKey } from '../kmskey/shard.ts';
import { Counter, type Registry } from 'prom-client';
import type { ReconcilerSettings } from './settings.ts';

interface Shared {
  mgr: Manager;
  settings: ReconcilerSettings;
  openbao: OpenBaoClient;
  /** A drift clock per controller, trusted while the controller's token is (openBaoClient). */
  driftClock: <T>() => DriftClock<T>;
  keys: Informer<KmsKeyObject>;
  clusters: Informer<KdcClusterObject>;
  tasks: Informer<KubeObject>;
  namespaces: Informer<KubeObject>;
  tcps: Informer<TcpAttachment & KubeObject>;
  /** Reconciles that read OpenBao back or trusted the drift clock (driftCheckMetric). */
  driftChecks: Counter<'controller' | 'result'>;
}

export function driftCheckMetric(registry: Registry): Counter<'controller' | 'result'> {
  return new Counter({
    name: 'kdc_openbao_drift_checks_total',
    help: 'Reconciles that read OpenBao back (checked) or trusted the last read within OPENBAO_DRIFT_CHECK_PERIOD (skipped)',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
}

/**
 * An OpenBao client whose token is renewed and re-read from its file while we run (token-keeper.ts),
 * and looked up at least every 30 s (each resync when shorter): the drift clocks trust what they
 * verified only while OpenBao accepts the token.
 */
export function openBaoClient(mgr: Manager, settings: ReconcilerSettings) {
  const base = new OpenBaoClient(settings.openBao);
  const checkEveryMs = Math.min(30_000, settings.resyncMs);
  const token = mgr.configure(() =>
    tokenKeeperFromEnv(mgr.env, { base, logger: mgr.logger, registry: mgr.registry, checkEveryMs }),
  );
  mgr.onBeforeSync(() => token.start());
  mgr.onStop(() => token.stop());
  return {
    openbao: new OpenBaoClient({ ...settings.openBao, credentials: token }),
    driftClock: <T>() =>
      new DriftClock<T>(settings.driftCheckMs, { trusted: () => token.token() !== undefined && !token.rejected() }),
  };
}

export function informers(mgr: Manager, settings: ReconcilerSettings) {
  return {
    keys: mgr.informer(RESOURCES.kmsKey),
    clusters: mgr.informer(RESOURCES.kdcCluster, { labelSelector: settings.clusterSelector }),
    tasks: mgr.informer(CONFIGMAPS(mgr.namespace), { labelSelector: CLEANUP_LABEL }),
    // For the organisation label only: a resync of thousands of tenants then reads no Namespace.
    namespaces: mgr.informer(RESOURCES.namespace, { transform: organizationView }),
    // The cluster rules read whether a TCP is attached and who owns it: kept slim, a steady
    // resync reads no TCP. With the cluster selector: k8-manager gives the TCPs it makes or adopts
    // its own selector's labels, and a TCP outside this selection is read from the apiserver.
    tcps: mgr.informer(RESOURCES.tenantControlPlane, {
      labelSelector: settings.clusterSelector,
      transform: tcpAttachmentView,
    }),
  };
}

// Failures here are mostly OpenBao being away: retry after 0.5 s, 1 s, 2 s ... at most a minute.
const loop = ({ settings }: Shared) => ({
  workers: settings.workers,
  resyncMs: settings.resyncMs,
  backoff: { baseDelayMs: 500, maxDelayMs: 60_000 },
});
const common = ({ mgr, openbao, tasks, namespaces }: Shared) => ({
  kube: mgr.kube,
  openbao,
  tasks,
  namespaces,
  controllerNamespace: mgr.namespace,
  logger: mgr.logger,
  recorder: mgr.recorder,
});

export function setupKmsKeyController(s: Shared): void {
  const reconcile = kmsKeyReconciler({
    ...common(s),
    keys: s.keys,
    metrics: kmsKeyMetrics(s.mgr.registry),
    driftClock: s.driftClock(),
    countDriftCheck: (result) => s.driftChecks.inc({ controller: 'kmskey', result }),
    deletionCountdownSeconds: s.settings.deletionCountdownSeconds,
    rotationFloor: s.settings.rotationFloorSeconds,
  });
  s.mgr
    .controller({ name: 'kmskey', ...loop(s), reconcile }, s.settings.controllers.has('kmskey'))
    .watchPrimary(s.keys, ownsKmsKey(s.settings.kmsKeyShard));
  const { index, count } = s.settings.kmsKeyShard;
  if (count > 1 && s.settings.controllers.has('kmskey'))
    s.mgr.logger.info({ kmsKeyShard: `${index}/${count}` }, 'KMSKey controller: the keys of this shard only');
}

export function setupClusterAccessController(s: Shared): void {
  const reconcile = clusterAccessReconciler({
    ...common(s),
    clusters: s.clusters,
    keys: s.keys,
    tcps: s.tcps,
    // The master-config Secret may change while we run: re-read every 30 s.
    platformConfig: platformConfigLookup(s.mgr.kube, s.mgr.namespace, s.mgr.env),
    // Ownership records are OpenBao state like the policies: read again after the drift period
    // (at least every 5 minutes), not on every resync.
    transitKeyOf: transitKeyLookup(s.openbao, Math.max(300_000, s.settings.driftCheckMs)),
    metrics: clusterAccessMetrics(s.mgr.registry),
    driftClock: s.driftClock(),
    countDriftCheck: (result) => s.driftChecks.inc({ controller: 'kdccluster-openbao', result }),
  });
  s.mgr
    .controller({ name: 'kdccluster-openbao', ...loop(s), reconcile }, s.settings.controllers.has('kdccluster-openbao'))
    .watchPrimary(s.clusters)
    .watchSecondary(s.keys, (key) => clustersUsingKey(s.clusters, key));
}

export function setupCleanupController(s: Shared): void {
  const reconcile = cleanupReconciler({
    kube: s.mgr.kube,
    openbao: s.openbao,
    tasks: s.tasks,
    namespace: s.mgr.namespace,
    logger: s.mgr.logger,
    metrics: cleanupMetrics(s.mgr.registry),
  });
  s.mgr
    .controller({ name: 'cleanup', ...loop(s), workers: 2, reconcile }, s.settings.controllers.has('cleanup'))
    .watchPrimary(s.tasks);
}
