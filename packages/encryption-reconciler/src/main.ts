#!/usr/bin/env node
// encryption-reconciler: the KMSKey controller and the per-cluster OpenBao access reconciler, leader-elected. Configuration from the
// environment: KUBECONFIG (or in-cluster), OPENBAO_URL, OPENBAO_TOKEN_FILE (re-read: rotate the Secret) or OPENBAO_TOKEN, OPENBAO_TOKEN_SECRET (named in conditions),
// OPENBAO_CA_BUNDLE (PEM file), KMS_PLUGIN_IMAGE (checked like k8-manager does), POD_NAMESPACE, POD_NAME, METRICS_ADDR, KMSKEY_DELETION_COUNTDOWN, RESYNC_PERIOD, WORKERS,
// CLUSTER_SELECTOR (label selector for KdcClusters), CONTROLLERS (default kmskey,kdccluster-openbao,cleanup),
// KMSKEY_MIN_ROTATION (shortest KMSKey rotation interval, default 1h) and KMSKEY_MIN_ROTATION_ETCD (purpose etcd, default 7d).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  Controller,
  createLogger,
  createRegistry,
  EventRecorder,
  Informer,
  KubeClient,
  LeaderElector,
  OpenBaoClient,
  controllerMetrics,
  exitOnVersionFlag,
  onShutdown,
  parseKmsKeyInterval,
  platformConfigLookup,
  serveMetrics,
  splitHostPort,
  tokenKeeperFromEnv,
  RESOURCES,
} from '@kdc/shared';
import { cleanupMetrics, cleanupReconciler } from './cleanup/reconciler.ts';
import { CLEANUP_LABEL, CONFIGMAPS } from './cleanup/tasks.ts';
import { clusterAccessMetrics, clusterAccessReconciler, clustersUsingKey } from './cluster/reconciler.ts';
import { kmsKeyMetrics, kmsKeyReconciler } from './kmskey/reconciler.ts';

exitOnVersionFlag('encryption-reconciler');
const logger = createLogger('encryption-reconciler');
const env = process.env;
const fail = (message: string): never => {
  logger.error(message);
  process.exit(2);
};

const openBaoUrl =
  env.OPENBAO_URL ?? fail('OPENBAO_URL is not set: point it at OpenBao, e.g. https://openbao.openbao.svc:8200');
const countdown = parseKmsKeyInterval(env.KMSKEY_DELETION_COUNTDOWN ?? '30d');
if (!countdown.ok) fail(`KMSKEY_DELETION_COUNTDOWN: ${countdown.error}`);
const { host: metricsHost, port: metricsPort } = splitHostPort(env.METRICS_ADDR ?? '127.0.0.1:8080');
const resync = parseKmsKeyInterval(env.RESYNC_PERIOD ?? '10m');
if (!resync.ok) fail(`RESYNC_PERIOD: ${resync.error}`);
const resyncMs = resync.ok ? resync.seconds * 1000 : 600_000;
const floor = (name: string, fallback: string) => {
  const parsed = parseKmsKeyInterval(env[name] || fallback);
  return parsed.ok ? parsed.seconds : fail(`${name}: ${parsed.error}`);
};
const rotationFloor = { etcd: floor('KMSKEY_MIN_ROTATION_ETCD', '7d'), other: floor('KMSKEY_MIN_ROTATION', '1h') };

const kube = (() => {
  try {
    return env.KUBECONFIG ? KubeClient.fromFile(env.KUBECONFIG) : KubeClient.fromDefault();
  } catch (error) {
    return fail((error as Error).message);
  }
})();
const registry = createRegistry();
const openBaoBase = {
  endpoint: openBaoUrl,
  caBundle: env.OPENBAO_CA_BUNDLE ? readFileSync(env.OPENBAO_CA_BUNDLE, 'utf8') : undefined,
  timeoutMs: 10_000,
};
// The token is renewed and re-read from its file while we run (token-keeper.ts).
const openBaoToken = (() => {
  try {
    return tokenKeeperFromEnv(env, { base: new OpenBaoClient(openBaoBase), logger, registry });
  } catch (error) {
    return fail((error as Error).message);
  }
})();
const openbao = new OpenBaoClient({ ...openBaoBase, credentials: openBaoToken });
const identity = env.POD_NAME ?? `${hostname()}-${process.pid}`;
const recorder = new EventRecorder(kube, 'encryption-reconciler', identity);
const keys = new Informer(kube, RESOURCES.kmsKey, { logger });
const clusters = new Informer(kube, RESOURCES.kdcCluster, { logger, labelSelector: env.CLUSTER_SELECTOR || undefined });
const workers = Number(env.WORKERS ?? 4);
const controllerNamespace = env.POD_NAMESPACE ?? 'kube-dc-system';
const tasks = new Informer(kube, CONFIGMAPS(controllerNamespace), { logger, labelSelector: CLEANUP_LABEL });
// The master-config Secret may change while we run: re-read every 30 s.
const platformConfig = platformConfigLookup(kube, controllerNamespace, env);
// Failures here are mostly OpenBao being away: retry after 0.5 s, 1 s, 2 s ... at most a minute.
const backoff = { baseDelayMs: 500, maxDelayMs: 60_000 };
const enabledControllers = new Set(
  (env.CONTROLLERS ?? 'kmskey,kdccluster-openbao,cleanup').split(',').map((c) => c.trim()),
);
const controllers = [
  new Controller({
    name: 'kmskey',
    logger,
    registry,
    workers,
    resyncMs,
    backoff,
    reconcile: kmsKeyReconciler({
      kube,
      openbao,
      keys,
      tasks,
      controllerNamespace,
      logger,
      recorder,
      metrics: kmsKeyMetrics(registry),
      deletionCountdownSeconds: countdown.ok ? countdown.seconds : 0,
      rotationFloor: (purpose) => (purpose === 'etcd' ? rotationFloor.etcd : rotationFloor.other),
    }),
  }).watchPrimary(keys),
  new Controller({
    name: 'kdccluster-openbao',
    logger,
    registry,
    workers,
    resyncMs,
    backoff,
    reconcile: clusterAccessReconciler({
      kube,
      openbao,
      clusters,
      keys,
      tasks,
      controllerNamespace,
      platformConfig,
      logger,
      recorder,
      metrics: clusterAccessMetrics(registry),
    }),
  })
    .watchPrimary(clusters)
    .watchSecondary(keys, (key) => clustersUsingKey(clusters, key)),
  new Controller({
    name: 'cleanup',
    logger,
    registry,
    workers: 2,
    resyncMs,
    backoff,
    reconcile: cleanupReconciler({
      kube,
      openbao,
      tasks,
      namespace: controllerNamespace,
      logger,
      metrics: cleanupMetrics(registry),
    }),
  }).watchPrimary(tasks),
].filter((c) => enabledControllers.has(c.name));
const leaderGauge = controllerMetrics(registry).isLeader;
const elector = new LeaderElector(kube, {
  namespace: controllerNamespace,
  name: 'encryption-reconciler',
  identity,
  logger,
  onStartedLeading: () => {
    leaderGauge.set({ lease: 'encryption-reconciler' }, 1);
    for (const c of controllers) c.start();
  },
  onStoppedLeading: () => {
    leaderGauge.set({ lease: 'encryption-reconciler' }, 0);
    // Another instance leads now: stop at once rather than act on a lease we no longer hold.
    void Promise.all(controllers.map((c) => c.stop())).then(() => process.exit(1));
  },
});

const server = await serveMetrics(registry, {
  host: metricsHost,
  port: Number(metricsPort),
  ready: () => keys.hasSynced && clusters.hasSynced && tasks.hasSynced,
});
await openBaoToken.start().catch((error: Error) => fail(error.message));
keys.start();
clusters.start();
tasks.start();
await Promise.all([keys.waitForSync(), clusters.waitForSync(), tasks.waitForSync()]);
elector.start();
logger.info({ identity }, 'encryption-reconciler started');

onShutdown(
  async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    await elector.stop();
    openBaoToken.stop();
    await Promise.all([keys.stop(), clusters.stop(), tasks.stop()]);
    server.close();
  },
  { logger },
);
