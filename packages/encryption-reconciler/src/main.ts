#!/usr/bin/env node
// encryption-reconciler: the KMSKey controller, the per-cluster OpenBao access reconciler and the cleanup
// of deleted keys' OpenBao objects, leader-elected. Settings: setup/settings.ts; wiring: setup/controllers.ts.
import { exitOnVersionFlag, Manager } from '@kdc/shared';
import {
  driftCheckMetric,
  informers,
  openBaoClient,
  setupCleanupController,
  setupClusterAccessController,
  setupKmsKeyController,
} from './setup/controllers.ts';
import { reconcilerSettings } from './setup/settings.ts';

exitOnVersionFlag('encryption-reconciler');
const mgr = new Manager({ name: 'encryption-reconciler', defaultMetricsAddr: '127.0.0.1:8080' });
const settings = mgr.configure(() => reconcilerSettings(mgr.env));
const shared = {
  mgr,
  settings,
  ...openBaoClient(mgr, settings),
  ...informers(mgr, settings),
  driftChecks: driftCheckMetric(mgr.registry),
};
setupKmsKeyController(shared);
setupClusterAccessController(shared);
setupCleanupController(shared);
await mgr.start();
