#!/usr/bin/env node
// k8-manager: reconciles KdcClusters into encrypted tenant control planes, leader-elected.
// Settings: setup/settings.ts; the process (informers, election, metrics, shutdown): the shared Manager.
import { exitOnVersionFlag, Manager, RESOURCES } from '@kdc/shared';
import { checkLeasesMain } from './check-leases.ts';
import { dataStoreRows } from './migration/etcd-access.ts';
import { migrationMetrics } from './migration/reconcile.ts';
import { tenantObserver } from './tenant/observe-tenant.ts';
import { k8ManagerMetrics, kdcClusterReconciler } from './reconciler.ts';
import { k8ManagerSettings } from './setup/settings.ts';
import { clustersNamingKey, controlPlaneEvents, ownedBy } from './setup/watches.ts';
import { storageOf } from './tenant/datastore.ts';

exitOnVersionFlag('k8-manager');
if (process.argv[2] === 'check-leases') process.exit(await checkLeasesMain(process.argv.slice(3)));
const mgr = new Manager({ name: 'k8-manager', defaultMetricsAddr: '127.0.0.1:8081' });
const settings = mgr.configure(() => k8ManagerSettings(mgr.env));
const { kube, logger, recorder, registry } = mgr;
const clusters = mgr.informer(RESOURCES.kdcCluster, { labelSelector: settings.clusterSelector });
const keys = mgr.informer(RESOURCES.kmsKey);
const tcps = mgr.informer(RESOURCES.tenantControlPlane);
// For the organisation label only: an observe period of thousands of tenants then reads no Namespace.
const namespaces = mgr.informer(RESOURCES.namespace);
const owned = ownedBy(clusters);
const tcpsOnDataStore = tcps.index(storageOf);
const tcpEvents = controlPlaneEvents(tcpsOnDataStore);
const deps = {
  kube,
  logger,
  recorder,
  clusters,
  keys,
  tcps,
  tcpsOnDataStore,
  namespaces,
  env: settings.env,
  controllerNamespace: mgr.namespace,
};
mgr
  .controller({
    name: 'kdccluster',
    workers: settings.workers,
    resyncMs: settings.resyncMs,
    backoff: { baseDelayMs: 500, maxDelayMs: 60_000 },
    reconcile: kdcClusterReconciler({
      ...deps,
      observeTenant: tenantObserver(kube),
      metrics: k8ManagerMetrics(registry),
      observePeriodMs: settings.observePeriodMs,
      migration: { ...settings.migration, rows: dataStoreRows(kube), metrics: migrationMetrics(registry) },
    }),
  })
  .watchPrimary(clusters)
  .watchSecondary(keys, (key) => owned(clustersNamingKey(clusters, key)))
  .watchSecondary(tcps, (tcp, event) => owned(tcpEvents(tcp, event)));
await mgr.start({ selector: settings.clusterSelector ?? '' });
