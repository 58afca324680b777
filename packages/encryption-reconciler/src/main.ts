#!/usr/bin/env node
// encryption-reconciler: the KMSKey controller, leader-elected. Configuration from the
// environment: KUBECONFIG (or in-cluster), OPENBAO_URL, OPENBAO_TOKEN or OPENBAO_TOKEN_FILE,
// OPENBAO_CA_BUNDLE (PEM file), POD_NAMESPACE, POD_NAME, METRICS_ADDR, KMSKEY_DELETION_COUNTDOWN.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  Controller, createLogger, createRegistry, EventRecorder, Informer, KubeClient, LeaderElector, OpenBaoClient,
  controllerMetrics, onShutdown, parseKmsKeyInterval, serveMetrics,
} from '@kdc/shared';
import { KMSKEY_REF, kmsKeyMetrics, kmsKeyReconciler } from './kmskey/reconciler.ts';

const logger = createLogger('encryption-reconciler');
const env = process.env;
const fail = (message: string): never => {
  logger.error(message);
  process.exit(2);
};

const openBaoUrl = env.OPENBAO_URL ?? fail('OPENBAO_URL is not set: point it at OpenBao, e.g. https://openbao.openbao.svc:8200');
const token = env.OPENBAO_TOKEN ?? (env.OPENBAO_TOKEN_FILE ? readFileSync(env.OPENBAO_TOKEN_FILE, 'utf8').trim() : fail('set OPENBAO_TOKEN or OPENBAO_TOKEN_FILE'));
const countdown = parseKmsKeyInterval(env.KMSKEY_DELETION_COUNTDOWN ?? '30d');
if (!countdown.ok) fail(`KMSKEY_DELETION_COUNTDOWN: ${countdown.error}`);
const [metricsHost, metricsPort] = (env.METRICS_ADDR ?? '127.0.0.1:8080').split(':');

const kube = env.KUBECONFIG ? KubeClient.fromFile(env.KUBECONFIG) : KubeClient.fromDefault();
const openbao = new OpenBaoClient({ endpoint: openBaoUrl, token, caBundle: env.OPENBAO_CA_BUNDLE ? readFileSync(env.OPENBAO_CA_BUNDLE, 'utf8') : undefined, timeoutMs: 10_000 });
const registry = createRegistry();
const identity = env.POD_NAME ?? `${hostname()}-${process.pid}`;
const keys = new Informer(kube, KMSKEY_REF, { logger });
const controller = new Controller({
  name: 'kmskey',
  logger,
  registry,
  workers: Number(env.WORKERS ?? 4),
  resyncMs: 10 * 60_000,
  reconcile: kmsKeyReconciler({
    kube, openbao, keys, logger,
    recorder: new EventRecorder(kube, 'encryption-reconciler', identity),
    metrics: kmsKeyMetrics(registry),
    deletionCountdownSeconds: countdown.ok ? countdown.seconds : 0,
  }),
});
controller.watchPrimary(keys);
const leaderGauge = controllerMetrics(registry).isLeader;
const elector = new LeaderElector(kube, {
  namespace: env.POD_NAMESPACE ?? 'kube-dc-system',
  name: 'encryption-reconciler',
  identity,
  logger,
  onStartedLeading: () => {
    leaderGauge.set({ lease: 'encryption-reconciler' }, 1);
    controller.start();
  },
  onStoppedLeading: () => {
    leaderGauge.set({ lease: 'encryption-reconciler' }, 0);
    // Another instance leads now: stop at once rather than act on a lease we no longer hold.
    void controller.stop().then(() => process.exit(1));
  },
});

const server = await serveMetrics(registry, { host: metricsHost, port: Number(metricsPort), ready: () => keys.hasSynced });
keys.start();
await keys.waitForSync();
elector.start();
logger.info({ identity }, 'encryption-reconciler started');

onShutdown(async () => {
  await controller.stop();
  await elector.stop();
  await keys.stop();
  server.close();
}, { logger });
