// npm run bench:reconcile: BENCH_N KMSKeys and KdcClusters created at once against the real
// encryption-reconciler (the chart's heap cap, WORKERS workers). Baseline, same run and servers:
// every write the controllers must make for those objects, issued directly by WORKERS workers
// (ownership record, Transit key, both policies and roles, the finalizer and one status write per
// object, and the plugin pre-flight: TokenRequest, login, encrypt, decrypt, capabilities, revoke).
// Then two steady resyncs: Kubernetes and OpenBao writes, CPU seconds and RSS of the controller,
// and the CPU of the same steady reads issued directly (the floor of a resync that verifies
// every tenant's OpenBao objects with this client library).
// Prints one JSON line last.
import { join } from 'node:path';
import {
  KDC_API_VERSION,
  type KubeClient,
  OwnershipRegistry,
  enableOwnershipMount,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  kdcClusterSpecSchema,
  resolveKeyRefs,
  transitKeyName,
  resourcePath,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { bundle, imageSpec } from '@kdc/images';
import { buildAutoKey } from '@kdc/k8-manager';
import { desiredAccess } from '@kdc/encryption-reconciler';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';
import { chartDriftCheckPeriod, chartNodeOptions } from '../src/chart.ts';
import { startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { startPlatform } from '../src/platform.ts';
import { sleep } from '../src/wait.ts';
import { benchClients, directAccessWrites, directKeyWrites } from './direct-writes.ts';
import { diff, metricsOf, openBaoRequests, sum } from './controller-metrics.ts';
import { inParallel, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 1_000);
const CREATE_CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
/**
 * The controller's resync period in the bench. One pass must fit in it, or a "steady resync"
 * counts only part of the tenants: 4 workers made about 1,000 requests/s here, 7 per tenant
 * (measured at 5,000 tenants with 10 s: 3,605 of 10,000 reconciles per period).
 */
const RESYNC_S = Number(process.env.BENCH_RESYNC_S ?? Math.max(10, Math.ceil(N / 100)));
/** The encryption-reconciler's NODE_OPTIONS as the chart sets them (its heap cap), unless BENCH_NODE_OPTIONS says otherwise. */
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? chartNodeOptions('encryptionReconciler');
/**
 * How often OpenBao is read back when nothing changed: the chart's default (1h: a steady resync
 * reads nothing from OpenBao) unless BENCH_DRIFT_CHECK_S says otherwise (0: every resync reads it
 * all back, the cost of one read-back pass).
 */
const DRIFT_CHECK = process.env.BENCH_DRIFT_CHECK_S ? `${process.env.BENCH_DRIFT_CHECK_S}s` : chartDriftCheckPeriod();
const SPEC = kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } });

type Obj = KubeObject & { status?: { conditions?: { type: string; status: string }[] } };
const countTrue = (items: Obj[], type: string) =>
  items.filter((o) => o.status?.conditions?.some((c) => c.type === type && c.status === 'True')).length;

/** The KMSKey, its plugin's ServiceAccount and the KdcCluster, as k8-manager and the tenant make them. */
async function createCluster(kube: KubeClient, namespace: string, name: string) {
  const key = await kube.create({ ...RESOURCES.kmsKey, namespace }, buildAutoKey(namespace, name, SPEC));
  await kube.create(at(RESOURCES.serviceAccount, namespace), {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: clusterNames(name).kmsPluginServiceAccount },
  });
  const cluster = await kube.create(
    { ...RESOURCES.kdcCluster, namespace },
    { apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name }, spec: SPEC },
  );
  return { key, cluster };
}

const platform = await startPlatform();
try {
  const p = platform.state;
  const { kube, root } = benchClients(p);
  for (const name of ['kube-dc-system', 'direct', 'bench'])
    await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

  // The baseline's objects exist before its clock starts: creating them is the tenant's work.
  const direct = new Array<Awaited<ReturnType<typeof createCluster>>>(N);
  await inParallel(N, CREATE_CONCURRENCY, async (i) => (direct[i] = await createCluster(kube, 'direct', `d${i}`)));
  // Once per OpenBao, not per object: the mounts are ready before either clock starts.
  const mounts = (await root.secretMounts()) as Record<string, unknown>;
  if (!mounts['transit/']) await root.enableSecretsEngine('transit', 'transit');
  await enableOwnershipMount(root);
  const baselineMark = auditMark(p.openbao.auditLog);
  const d = { kube, root, owners: new OwnershipRegistry(root) };
  const directMs = await inParallel(N, WORKERS, async (i) => {
    const { key, cluster } = direct[i]!;
    await directKeyWrites(d, key, `d${i}`, SPEC);
    await directAccessWrites(d, cluster, SPEC);
  });
  const directOpenBaoWrites = openBaoRequests(auditLinesSince(p.openbao.auditLog, baselineMark));
  // Out of the controller's way: it watches every namespace (no finalizers, so gone at once).
  for (const ref of [RESOURCES.kmsKey, RESOURCES.kdcCluster])
    await kube.request('DELETE', resourcePath(at(ref, 'direct')));

  // The program the image ships (one bundled module), not the TypeScript source: its memory is the one to measure.
  const shipped = await bundle(imageSpec('encryption-reconciler'), join(p.dir, 'encryption-reconciler-bundle'), {
    version: 'bench',
  });
  const controller = await startEncryptionReconciler(p, {
    main: join(shipped.dir, 'main.js'),
    name: 'encryption-reconciler-bench',
    leaseNamespace: 'kube-dc-system',
    env: {
      RESYNC_PERIOD: `${RESYNC_S}s`,
      OPENBAO_DRIFT_CHECK_PERIOD: DRIFT_CHECK,
      LOG_LEVEL: 'warn',
      WORKERS: String(WORKERS),
      NODE_OPTIONS,
    },
  });
  const scrape = async () => metricsOf(await (await fetch(`${controller.metricsUrl}/metrics`)).text());
  const convergeMark = auditMark(p.openbao.auditLog);
  const t0 = performance.now();
  await inParallel(N, CREATE_CONCURRENCY, (i) => createCluster(kube, 'bench', `c${i}`));
  let keysReadyS = 0;
  let policiesReadyS = 0;
  while (!policiesReadyS || !keysReadyS) {
    await sleep(500);
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
  const converged = await scrape();
  const convergeOpenBaoWrites = openBaoRequests(auditLinesSince(p.openbao.auditLog, convergeMark));
  console.error('controller Kubernetes writes while converging:', JSON.stringify(converged.kubeWrites));
  console.error('controller OpenBao writes while converging:', JSON.stringify(convergeOpenBaoWrites.byPath));
  console.error('direct OpenBao writes:', JSON.stringify(directOpenBaoWrites.byPath));

  // Let the last status writes land and one resync pass, then count over two more.
  await sleep(RESYNC_S * 1000 * 1.5);
  const before = await scrape();
  const steadyMark = auditMark(p.openbao.auditLog);
  await sleep(RESYNC_S * 1000 * 2);
  const after = await scrape();
  // The controller renewing its own token is kept apart, as the Lease renewals are: it is no write for a tenant.
  const steadyLines = auditLinesSince(p.openbao.auditLog, steadyMark);
  const tokenRenewals = steadyLines.filter(
    (line) => line.includes('"type":"request"') && line.includes('"path":"auth/token/renew-self"'),
  ).length;
  const steadyOpenBao = openBaoRequests(steadyLines.filter((line) => !line.includes('"path":"auth/token/renew-self"')));
  const kubeSteady = diff(after.kubeWrites, before.kubeWrites);
  const reconciles = after.reconciles - before.reconciles;
  await controller.stop();
  const convergeS = Math.max(keysReadyS, policiesReadyS);
  const directS = directMs / 1000;
  const leaseWrites = kubeSteady['leases'] ?? 0;
  delete kubeSteady['leases'];
  console.error('steady Kubernetes writes (two resyncs):', JSON.stringify(kubeSteady), `lease renewals ${leaseWrites}`);
  console.error(
    'steady OpenBao writes (two resyncs):',
    JSON.stringify(steadyOpenBao.byPath),
    `token renewals ${tokenRenewals}`,
  );
  const steadyReads = openBaoRequests(auditLinesSince(p.openbao.auditLog, steadyMark), 'reads');
  console.error('steady OpenBao reads (two resyncs):', JSON.stringify(steadyReads.byPath));
  const steadyKubeReads = diff(after.kubeReads, before.kubeReads);
  console.error('steady Kubernetes reads (two resyncs):', JSON.stringify(steadyKubeReads));

  // The floor, side by side: the reads a read-back pass makes for each tenant (its ownership
  // record, Transit key, policies, roles and TenantControlPlane; a steady resync within the drift
  // period makes only the last of them), issued directly by the same
  // client library with the same number of workers, and nothing else (no informers, planning or
  // status). What is left over is the controller's own work.
  const floorMark = auditMark(p.openbao.auditLog);
  const cpu0 = process.cpuUsage();
  await inParallel(N, WORKERS, async (i) => {
    const name = `c${i}`;
    const refs = resolveKeyRefs(name, SPEC);
    const etcd = transitKeyName('bench', refs.etcd);
    await d.owners.read(etcd);
    await root.transit().readKey(etcd);
    const access = desiredAccess('bench', name, SPEC, { etcd, backup: transitKeyName('bench', refs.backup) });
    for (const policy of access.policies) await root.readPolicy(policy.name);
    for (const role of access.roles) await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role.name);
    await kube.getOrNull({
      ...RESOURCES.tenantControlPlane,
      namespace: 'bench',
      name: clusterNames(name).tenantControlPlane,
    });
  });
  const cpu = process.cpuUsage(cpu0);
  const floorCpuS = (cpu.user + cpu.system) / 1e6;
  const floorReads = openBaoRequests(auditLinesSince(p.openbao.auditLog, floorMark), 'reads').total + N;
  console.error(`direct steady reads: ${floorReads} requests, ${round(floorCpuS)} CPU-s`);
  console.log(
    JSON.stringify({
      bench: 'reconcile',
      objects: N,
      workers: WORKERS,
      node_options: NODE_OPTIONS,
      kmskeys_ready_s: round(keysReadyS, 1),
      policies_ready_s: round(policiesReadyS, 1),
      direct_writes_s: round(directS, 1),
      direct_openbao_writes: directOpenBaoWrites.total,
      controller_openbao_writes: convergeOpenBaoWrites.total,
      controller_kube_writes: sum(converged.kubeWrites),
      converge_vs_direct_ratio: round(convergeS / directS),
      openbao_writes_per_steady_resync: steadyOpenBao.total / 2,
      token_renewals_per_steady_resync: tokenRenewals / 2,
      kube_writes_per_steady_resync: sum(kubeSteady) / 2,
      lease_writes_per_steady_resync: leaseWrites / 2,
      resync_period_s: RESYNC_S,
      openbao_drift_check_period: DRIFT_CHECK,
      openbao_reads_per_steady_resync: steadyReads.total / 2,
      reconciles_per_steady_resync: reconciles / 2,
      steady_resync_cpu_s: round((after.cpuSeconds - before.cpuSeconds) / 2),
      steady_requests_per_resync: (steadyReads.total + sum(steadyKubeReads)) / 2,
      direct_steady_reads: floorReads,
      direct_steady_reads_cpu_s: round(floorCpuS),
      steady_cpu_vs_direct_reads: round((after.cpuSeconds - before.cpuSeconds) / 2 / floorCpuS),
      controller_rss_mb: Math.round(after.rssBytes / 2 ** 20),
      controller_heap_used_mb: Math.round(after.heapUsedBytes / 2 ** 20),
      controller_heap_total_mb: Math.round(after.heapTotalBytes / 2 ** 20),
      controller_external_mb: Math.round(after.externalBytes / 2 ** 20),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
