#!/usr/bin/env node
// k8-manager: reconciles KdcClusters into encrypted tenant control planes, leader-elected.
// Settings: setup/settings.ts; the process (informers, election, metrics, shutdown): the shared Manager.
import {
  exitOnVersionFlag,
  Manager,
  organizationView,
  RESOURCES,
  type InformerEvent,
  type KubeObject,
} from '@kdc/shared';
import { OwnedReads, ownedSelector, ownedView, type OWNED_RESOURCES } from './owned/owned-reads.ts';
import { checkLeasesMain } from './check-leases.ts';
import { dataStoreRows } from './migration/etcd-access.ts';
import { migrationMetrics } from './migration/reconcile.ts';
import { tenantObserver } from './tenant/observe-tenant.ts';
import { k8ManagerMetrics, kdcClusterReconciler } from './reconciler.ts';
import { k8ManagerSettings } from './setup/settings.ts';
import { clusterOfLabel, clustersNamingKey, controlPlaneEvents, ownCluster, ownedBy } from './setup/watches.ts';
import { storageOf, tcpPlacement } from './tenant/datastore.ts';

exitOnVersionFlag('k8-manager');
if (process.argv[2] === 'check-leases') process.exit(await checkLeasesMain(process.argv.slice(3)));
const mgr = new Manager({ name: 'k8-manager', defaultMetricsAddr: '127.0.0.1:8081' });
const settings = mgr.configure(() => k8ManagerSettings(mgr.env));
const { kube, logger, recorder, registry } = mgr;
const shard = settings.clusterSelector;
const clusters = mgr.informer(RESOURCES.kdcCluster, { labelSelector: shard?.text });
const keys = mgr.informer(RESOURCES.kmsKey);
// A shard caches its own control planes whole (they carry its labels: shardLabels) and every other
// one as a placement only: who shares a DataStore crosses shards, and a shard's memory should
// follow its shard, not the platform.
const tcps = mgr.informer(RESOURCES.tenantControlPlane, { labelSelector: shard?.text });
const placements = shard ? mgr.informer(RESOURCES.tenantControlPlane, { transform: tcpPlacement }) : undefined;
// For the organisation label only: an observe period of thousands of tenants then reads no Namespace.
const namespaces = mgr.informer(RESOURCES.namespace, { transform: organizationView });
// What k8-manager makes for its clusters (ServiceAccounts, backup CronJobs and Jobs), slim and
// label-selected like the TCPs: a steady resync reads them here, not from the apiserver.
const ownedInformer = (ref: (typeof OWNED_RESOURCES)[number]) =>
  mgr.informer(ref, { labelSelector: ownedSelector(shard?.text), transform: ownedView });
const serviceAccounts = ownedInformer(RESOURCES.serviceAccount);
const cronJobs = ownedInformer(RESOURCES.cronJob);
const jobs = ownedInformer(RESOURCES.job);
const metrics = k8ManagerMetrics(registry);
const ownedReads = new OwnedReads(
  kube,
  { serviceAccounts, cronJobs, jobsByCluster: jobs.index((job) => clusterOfLabel(job)[0]) },
  (source) => metrics.ownedReads.inc({ source }),
);
kube.onWrite = (ref) => ownedReads.wrote(ref);
const owned = ownedBy(clusters);
const tcpsOnDataStore = placements ? placements.index(storageOf) : tcps.index(storageOf);
const tcpEvents = controlPlaneEvents(tcpsOnDataStore);
const onTcp = (tcp: KubeObject, event: InformerEvent) => owned(tcpEvents(tcp, event));
const deps = {
  kube,
  logger,
  recorder,
  clusters,
  keys,
  tcps,
  placements,
  shard,
  tcpsOnDataStore,
  namespaces,
  owned: ownedReads,
  env: settings.env,
  controllerNamespace: mgr.namespace,
};
const controller = mgr
  .controller({
    name: 'kdccluster',
    workers: settings.workers,
    resyncMs: settings.resyncMs,
    backoff: { baseDelayMs: 500, maxDelayMs: 60_000 },
    reconcile: kdcClusterReconciler({
      ...deps,
      observeTenant: tenantObserver(kube),
      metrics,
      observePeriodMs: settings.observePeriodMs,
      migration: { ...settings.migration, rows: dataStoreRows(kube), metrics: migrationMetrics(registry) },
    }),
  })
  .watchPrimary(clusters)
  .watchSecondary(keys, (key) => owned(clustersNamingKey(clusters, key)));
// A ServiceAccount, CronJob or Job of a cluster changed: its cluster looks again, and after a delete
// (or the object leaving the selection) reads its namespace directly until the caches agree again.
for (const informer of [serviceAccounts, cronJobs, jobs])
  controller.watchSecondary(informer, (object, event) => {
    if (event === 'delete') ownedReads.forget(object.metadata?.namespace);
    return owned(clusterOfLabel(object));
  });
if (!placements) controller.watchSecondary(tcps, onTcp);
else {
  controller.watchSecondary(placements, onTcp);
  // The shard's own TCP cache can move after the placements did: its cluster hears that too.
  controller.watchSecondary(tcps, (tcp) => owned(ownCluster(tcp)));
}
await mgr.start({ selector: shard?.text ?? '' });
