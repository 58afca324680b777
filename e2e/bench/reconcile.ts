// npm run bench:reconcile: 1,000 KMSKeys and 1,000 KdcClusters created at once against the real
// encryption-reconciler; baseline: the same 1,000 Transit keys created directly, same run.
// Prints one JSON line last.
import {
  KDC_API_VERSION,
  KubeClient,
  OpenBaoClient,
  clusterNames,
  kdcClusterSpecSchema,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { buildAutoKey } from '@kdc/k8-manager';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';
import { startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { startPlatform } from '../src/platform.ts';
import { sleep } from '../src/wait.ts';
import { inParallel, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const RESYNC_S = 10;

type Obj = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };
const countTrue = (items: Obj[], type: string) =>
  items.filter((o) => o.status?.conditions?.some((c) => c.type === type && c.status === 'True')).length;

const platform = await startPlatform();
try {
  const p = platform.state;
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  const bao = new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    token: p.openbao.rootToken,
    timeoutMs: 30_000,
  }).transit();
  let t0 = performance.now();
  await inParallel(N, CONCURRENCY, (i) => bao.createKey(`baseline-${i}`));
  const directS = (performance.now() - t0) / 1000;

  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-dc-system' } });
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  const controller = await startEncryptionReconciler(p, {
    name: 'encryption-reconciler-bench',
    leaseNamespace: 'kube-dc-system',
    env: { RESYNC_PERIOD: `${RESYNC_S}s`, LOG_LEVEL: 'warn', WORKERS: '8' },
  });
  t0 = performance.now();
  await inParallel(N, CONCURRENCY, async (i) => {
    const names = clusterNames(`c${i}`);
    await kube.create(
      { ...RESOURCES.kmsKey, namespace: 'bench' },
      buildAutoKey(
        'bench',
        `c${i}`,
        kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } }),
      ),
    );
    await kube.create(at(RESOURCES.serviceAccount, 'bench'), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: names.kmsPluginServiceAccount },
    });
    await kube.create(
      { ...RESOURCES.kdcCluster, namespace: 'bench' },
      {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: `c${i}` },
        spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
      },
    );
  });
  let keysReadyS = 0;
  let policiesReadyS = 0;
  while (!policiesReadyS || !keysReadyS) {
    await sleep(1_000);
    const keys = await kube.list<Obj>({ ...RESOURCES.kmsKey, namespace: 'bench' });
    const clusters = await kube.list<Obj>({ ...RESOURCES.kdcCluster, namespace: 'bench' });
    const elapsed = (performance.now() - t0) / 1000;
    if (!keysReadyS && countTrue(keys.items, 'Ready') === N) keysReadyS = elapsed;
    if (!policiesReadyS && countTrue(clusters.items, 'KMSPreflight') === N) policiesReadyS = elapsed;
    console.error(
      `${Math.round(elapsed)} s: ${countTrue(keys.items, 'Ready')} keys ready, ${countTrue(clusters.items, 'KMSPreflight')} pre-flights passed`,
    );
    if (elapsed > 1_800) throw new Error('did not converge within 30 minutes');
  }
  await sleep(RESYNC_S * 1000);
  const writesSince = (mark: number) =>
    auditLinesSince(p.openbao.auditLog, mark).filter((l) => {
      if (!l.includes('"type":"request"')) return false;
      const op = (JSON.parse(l) as { request: { operation: string } }).request.operation;
      return op !== 'read' && op !== 'list';
    }).length;
  const mark = auditMark(p.openbao.auditLog);
  await sleep(RESYNC_S * 1000 * 2);
  const steadyWrites = writesSince(mark) / 2;
  const metrics = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
  const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(metrics)?.[1] ?? 0) / 2 ** 20;
  await controller.stop();
  console.log(
    JSON.stringify({
      bench: 'reconcile',
      objects: N,
      kmskeys_ready_s: round(keysReadyS, 1),
      policies_ready_s: round(policiesReadyS, 1),
      direct_transit_create_s: round(directS, 1),
      kmskeys_vs_direct_ratio: round(directS / keysReadyS),
      openbao_writes_per_steady_resync: steadyWrites,
      controller_rss_mb: Math.round(rss),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
