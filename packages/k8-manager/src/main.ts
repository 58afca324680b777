#!/usr/bin/env node
// k8-manager: reconciles KdcClusters into encrypted tenant control planes, leader-elected.
// Environment: KUBECONFIG (or in-cluster), KMS_PLUGIN_IMAGE, OPENBAO_ENABLED (false: the chart turned OpenBao off), OPENBAO_URL,
// OPENBAO_CA_BUNDLE, S3_ENDPOINT (SPEC 7; or the master-config Secret), KDC_BACKUP_IMAGE, POD_NAMESPACE, POD_NAME,
// METRICS_ADDR, RESYNC_PERIOD, OBSERVE_PERIOD (how often a Ready tenant is looked at), WORKERS, LEASE_NAME, CLUSTER_SELECTOR (label selector: shard the clusters),
// MIGRATION_PAGE_SIZE (objects re-written per step, default 200), MIGRATION_RATE (writes per second into one tenant apiserver, default 100).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  Controller,
  createLogger,
  createRegistry,
  EventRecorder,
  Informer,
  KubeClient,
  LABELS,
  LeaderElector,
  controllerMetrics,
  exitOnVersionFlag,
  kdcClusterSpecSchema,
  onShutdown,
  resolveKeyRefs,
  parseKmsKeyInterval,
  serveMetrics,
  splitHostPort,
  type KubeObject,
  RESOURCES,
} from '@kdc/shared';
import { checkLeasesMain } from './check-leases.ts';
import { clusterOfTcp, clustersOnDataStore } from './datastore.ts';
import { dataStoreRows } from './migration/etcd-access.ts';
import { migrationMetrics } from './migration/reconcile.ts';
import { tenantObserver } from './observe-tenant.ts';
import { k8ManagerMetrics, kdcClusterReconciler } from './reconciler.ts';

exitOnVersionFlag('k8-manager');
if (process.argv[2] === 'check-leases') process.exit(await checkLeasesMain(process.argv.slice(3)));
const logger = createLogger('k8-manager');
// OPENBAO_CA_BUNDLE holds the PEM itself or names a file with it (a mounted ConfigMap).
const caSetting = process.env.OPENBAO_CA_BUNDLE?.trim();
const env: Record<string, string | undefined> = {
  ...process.env,
  OPENBAO_CA_BUNDLE: caSetting && !caSetting.startsWith('-----BEGIN') ? readFileSync(caSetting, 'utf8') : caSetting,
};
const fail = (message: string): never => {
  logger.error(message);
  process.exit(2);
};

const resync = parseKmsKeyInterval(env.RESYNC_PERIOD ?? '10m');
if (!resync.ok) fail(`RESYNC_PERIOD: ${resync.error}`);
const observe = parseKmsKeyInterval(env.OBSERVE_PERIOD ?? '30s');
if (!observe.ok) fail(`OBSERVE_PERIOD: ${observe.error}`);
const { host: metricsHost, port: metricsPort } = splitHostPort(env.METRICS_ADDR ?? '127.0.0.1:8081');
const positive = (name: string, fallback: number) => {
  const value = Number(env[name] ?? fallback);
  return Number.isInteger(value) && value > 0 ? value : fail(`${name}: "${env[name]}" is not a whole number above 0`);
};
const migrationSettings = {
  pageSize: positive('MIGRATION_PAGE_SIZE', 200),
  ratePerSecond: positive('MIGRATION_RATE', 100),
};
const namespace = env.POD_NAMESPACE ?? 'kube-dc-system';
const kube = (() => {
  try {
    return env.KUBECONFIG ? KubeClient.fromFile(env.KUBECONFIG) : KubeClient.fromDefault();
  } catch (error) {
    return fail((error as Error).message);
  }
})();
const registry = createRegistry();
const identity = env.POD_NAME ?? `${hostname()}-${process.pid}`;
const recorder = new EventRecorder(kube, 'k8-manager', identity);
const clusters = new Informer(kube, RESOURCES.kdcCluster, { logger, labelSelector: env.CLUSTER_SELECTOR || undefined });
const keys = new Informer(kube, RESOURCES.kmsKey, { logger });
const tcps = new Informer(kube, RESOURCES.tenantControlPlane, { logger });
const informers = [clusters, keys, tcps];

const clusterOf = (object: KubeObject): string[] => {
  const ns = object.metadata?.namespace;
  const owner = object.metadata?.labels?.[LABELS.kdcCluster];
  return ns && owner ? [`${ns}/${owner}`] : [];
};
// A KMSKey change may matter to any cluster of its namespace that names it (explicit keyRef).
const clustersUsingKey = (key: KubeObject): string[] => {
  const ns = key.metadata?.namespace;
  const users = clusters.list(ns).filter((c) => {
    const spec = kdcClusterSpecSchema.safeParse((c as { spec?: unknown }).spec);
    return spec.success && Object.values(resolveKeyRefs(c.metadata!.name!, spec.data)).includes(key.metadata!.name!);
  });
  return [...new Set([...clusterOf(key), ...users.map((c) => `${ns}/${c.metadata?.name}`)])];
};
const controller = new Controller({
  name: 'kdccluster',
  logger,
  registry,
  workers: Number(env.WORKERS ?? 4),
  resyncMs: resync.ok ? resync.seconds * 1000 : 600_000,
  backoff: { baseDelayMs: 500, maxDelayMs: 60_000 },
  reconcile: kdcClusterReconciler({
    kube,
    clusters,
    keys,
    tcps,
    recorder,
    logger,
    env,
    controllerNamespace: namespace,
    metrics: k8ManagerMetrics(registry),
    observeTenant: tenantObserver(kube),
    observePeriodMs: observe.ok ? observe.seconds * 1000 : 30_000,
    migration: { ...migrationSettings, rows: dataStoreRows(kube), metrics: migrationMetrics(registry) },
  }),
})
  .watchPrimary(clusters)
  .watchSecondary(keys, clustersUsingKey)
  // A control plane arriving on (or leaving) a DataStore changes the backups of every cluster on it.
  .watchSecondary(tcps, (tcp) => [
    ...new Set([...(clusterOfTcp(tcp) ? [clusterOfTcp(tcp)!] : []), ...clustersOnDataStore(tcps, tcp)]),
  ]);

const leaderGauge = controllerMetrics(registry).isLeader;
const lease = env.LEASE_NAME ?? 'k8-manager';
const elector = new LeaderElector(kube, {
  namespace,
  name: lease,
  identity,
  logger,
  onStartedLeading: () => {
    leaderGauge.set({ lease }, 1);
    controller.start();
  },
  onStoppedLeading: () => {
    leaderGauge.set({ lease }, 0);
    void controller.stop().then(() => process.exit(1));
  },
});

const server = await serveMetrics(registry, {
  host: metricsHost,
  port: Number(metricsPort),
  ready: () => informers.every((i) => i.hasSynced),
});
for (const informer of informers) informer.start();
await Promise.all(informers.map((i) => i.waitForSync()));
elector.start();
logger.info({ identity, lease, selector: env.CLUSTER_SELECTOR ?? '' }, 'k8-manager started');

onShutdown(
  async () => {
    await controller.stop();
    await elector.stop();
    await Promise.all(informers.map((i) => i.stop()));
    server.close();
  },
  { logger },
);
