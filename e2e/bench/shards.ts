// npm run bench:shards: BENCH_N encrypted KdcClusters (default 5,000), one namespace each, split by
// label over BENCH_SHARDS releases (default 3) as the chart allows: each release a k8-manager and
// an encryption-reconciler with that release's CLUSTER_SELECTOR and Lease. KMSKeys are split by
// KMSKEY_SHARD (a hash of the namespace), one share per release; BENCH_KMSKEY_SHARDED=0 runs the
// KMSKey controller in the first release alone, as before KMSKEY_SHARD. The first release also
// runs cleanup. Programs as the images ship them (the bundles), heap caps as the chart sets them.
//
// Baseline, same run and servers: every write both controllers make for a cluster (the
// TenantControlPlane, KMSKey, ServiceAccount and EncryptionConfiguration Secret with their Events,
// the KMSKey's Transit key and status, the OpenBao policies and roles, the plugin pre-flight, the
// TenantControlPlane patch and the status writes), planned by the same pure planCluster and issued
// directly by as many workers as the releases' encryption-reconcilers have together.
//
// No tenant control plane runs (5,000 apiservers do not fit here): a cluster has converged when its
// TenantControlPlane carries the KMS plugin, k8-manager's last write before the tenant side. Then
// two resync periods: writes (Kubernetes per process, OpenBao in all), CPU and RSS per process.
// Before any KdcCluster exists, each process's CPU with no tenant (idle_cpu_s_per_resync_period).
// Prints one JSON line last.
import { join } from 'node:path';
import {
  KDC_API_VERSION,
  KDC_CLUSTER_CONDITIONS,
  EventRecorder,
  Informer,
  OwnershipRegistry,
  RESOURCES,
  at,
  decodeSecretData,
  enableOwnershipMount,
  gatherClusterFacts,
  isAttached,
  kdcClusterSpecSchema,
  platformConfigLookup,
  resourcePath,
  validateCluster,
  type KubeObject,
  type TenantControlPlane,
} from '@kdc/shared';
import { bundle, imageSpec } from '@kdc/images';
import { clusterOwner, planCluster, type ObservedCluster } from '@kdc/k8-manager';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';
import { chartDriftCheckPeriod, chartNodeOptions } from '../src/chart.ts';
import { startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { KMS_PLUGIN_IMAGE } from '../src/images.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { startPlatform } from '../src/platform.ts';
import { sleep } from '../src/wait.ts';
import type { ControllerProcess } from '../src/controller-process.ts';
import { diff, metricsOf, openBaoRequests, sum } from './controller-metrics.ts';
import { benchClients, directAccessWrites, directKeyWrites, type DirectDeps } from './direct-writes.ts';
import { inParallel, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 5_000);
const SHARDS = Number(process.env.BENCH_SHARDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const KMSKEY_SHARDED = process.env.BENCH_KMSKEY_SHARDED !== '0';
const CREATE_CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
/**
 * The chart's resync period (10 minutes) by default: a shorter one measured the bench, not the
 * controllers (at 34 s every shard re-queued its 1,667 clusters and keys faster than one pass
 * could finish while converging, and those sweeps took the two cores). The steady window is two
 * of them; BENCH_RESYNC_S=10 for a quick run at small N.
 */
const RESYNC_S = Number(process.env.BENCH_RESYNC_S ?? 600);
/** Before the steady window: the converge's last status writes and their watch events land. */
const SETTLE_S = Math.min(RESYNC_S * 1.5, 90);
/**
 * The idle window (no tenant yet), after the controllers' start has settled: a minute, so that
 * their start-up compilation is not counted as idle (from 20 s it was, and idle read higher than
 * some steady windows).
 */
const IDLE_S = Math.min(RESYNC_S, 120);
const IDLE_SETTLE_S = 60;
const SHARD_LABEL = 'bench.kdc.io/shard';
/** BENCH_PROFILE_DIR: each controller writes a V8 CPU profile there when it stops. */
const PROFILE = process.env.BENCH_PROFILE_DIR ? ` --cpu-prof --cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}` : '';
const NODE_OPTIONS = {
  k8Manager: chartNodeOptions('k8Manager') + PROFILE,
  encryptionReconciler: chartNodeOptions('encryptionReconciler') + PROFILE,
};
const SPEC = kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } });
const CLUSTER = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: KDC_API_VERSION,
  kind: 'KdcCluster',
  metadata: { name, labels },
  spec: SPEC,
});

const platform = await startPlatform();
try {
  const p = platform.state;
  const { kube, root } = benchClients(p);
  const namespace = (name: string) =>
    kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  for (const name of ['kube-dc-system', 'direct']) await namespace(name);
  await inParallel(N, CREATE_CONCURRENCY, (i) => namespace(`t${i}`));
  const mounts = (await root.secretMounts()) as Record<string, unknown>;
  if (!mounts['transit/']) await root.enableSecretsEngine('transit', 'transit');
  await enableOwnershipMount(root);

  // The baseline: the tenant's KdcClusters exist before its clock starts.
  const direct = new Array<KubeObject>(N);
  await inParallel(N, CREATE_CONCURRENCY, async (i) => {
    direct[i] = await kube.create({ ...RESOURCES.kdcCluster, namespace: 'direct' }, CLUSTER(`d${i}`));
  });
  const d: DirectDeps = { kube, root, owners: new OwnershipRegistry(root) };
  const recorder = new EventRecorder(kube, 'k8-manager', 'direct');
  const platformConfig = platformConfigLookup(kube, 'kube-dc-system', {
    OPENBAO_URL: p.openbao.url,
    OPENBAO_CA_BUNDLE: p.openbao.caPem,
    KMS_PLUGIN_IMAGE,
  });
  /**
   * The baseline for one cluster: planCluster's steps issued directly, the encryption-reconciler's
   * writes where the plan waits for them, the Events k8-manager records, and one status write.
   */
  const directCluster = async (cluster: KubeObject) => {
    const ns = cluster.metadata!.namespace!;
    const name = cluster.metadata!.name!;
    const validation = validateCluster(
      await gatherClusterFacts({
        cluster,
        clusters: [],
        kmsKey: () => undefined,
        tcp: null,
        platform: await platformConfig(),
        dataStoreOf: async () => null,
      }),
    );
    if (!validation.ok) throw new Error(`direct ${name}: ${validation.errors[0]!.message}`);
    let o: ObservedCluster = {
      namespace: ns,
      name,
      generation: cluster.metadata!.generation ?? 1,
      validation,
      tcp: null,
      autoKey: null,
      serviceAccountExists: false,
      secretData: undefined,
      preflight: undefined,
    };
    const owner = clusterOwner(cluster);
    for (let step = 0; step < 10; step++) {
      const action = planCluster(o);
      switch (action.kind) {
        case 'createTenantControlPlane': {
          const object = { ...action.object, metadata: { ...action.object.metadata, ownerReferences: [owner] } };
          o = { ...o, tcp: await kube.create({ ...RESOURCES.tenantControlPlane, namespace: ns }, object) };
          await recorder.record(cluster, 'Normal', 'TenantControlPlaneCreated', `created ${object.metadata.name}`);
          break;
        }
        case 'createKmsKey': {
          const key = await kube.create({ ...RESOURCES.kmsKey, namespace: ns }, action.object);
          await recorder.record(cluster, 'Normal', 'KMSKeyCreated', `created KMSKey ${key.metadata.name}`);
          o = { ...o, autoKey: action.object, etcdKeyId: await directKeyWrites(d, key, name, SPEC) };
          break;
        }
        case 'createServiceAccount':
          await kube.create(at(RESOURCES.serviceAccount, ns), action.object);
          o = { ...o, serviceAccountExists: true };
          break;
        case 'writeEncryptionConfig':
          await kube.create(at(RESOURCES.secret, ns), action.object);
          o = { ...o, secretData: decodeSecretData(action.object) };
          break;
        case 'waitForPreflight':
          await directAccessWrites(d, cluster, SPEC);
          o = {
            ...o,
            preflight: {
              type: KDC_CLUSTER_CONDITIONS.kmsPreflight,
              status: 'True',
              reason: 'Passed',
              message: 'direct',
              lastTransitionTime: new Date().toISOString(),
              observedGeneration: o.generation,
            },
          };
          break;
        case 'patchTenantControlPlane': {
          const tcp = o.tcp! as TenantControlPlane & KubeObject;
          const spec = { ...tcp.spec, controlPlane: { ...tcp.spec.controlPlane, deployment: action.deployment } };
          o = {
            ...o,
            tcp: await kube.replace(
              { ...RESOURCES.tenantControlPlane, namespace: ns, name: tcp.metadata.name },
              {
                ...tcp,
                spec,
              },
            ),
          };
          await recorder.record(cluster, 'Normal', 'TenantControlPlanePatched', `attached ${tcp.metadata.name}`);
          break;
        }
        case 'done':
          await kube.patch(
            { ...RESOURCES.kdcCluster, namespace: ns, name, subresource: 'status' },
            { status: { encryption: { kmsPluginReady: false } } },
          );
          return;
        default:
          throw new Error(`direct ${name}: the plan asked for ${action.kind}`);
      }
    }
    throw new Error(`direct ${name}: not done in 10 steps`);
  };
  const baselineMark = auditMark(p.openbao.auditLog);
  const directWorkers = WORKERS * SHARDS;
  const directMs = await inParallel(N, directWorkers, (i) => directCluster(direct[i]!));
  const directOpenBaoWrites = openBaoRequests(auditLinesSince(p.openbao.auditLog, baselineMark));
  console.error(`direct: ${N} clusters in ${round(directMs / 1000, 1)} s by ${directWorkers} workers`);
  // Out of the KMSKey controller's way: it watches every namespace (no finalizers, so gone at once).
  for (const ref of [RESOURCES.kmsKey, RESOURCES.kdcCluster, RESOURCES.tenantControlPlane])
    await kube.request('DELETE', resourcePath(at(ref, 'direct')));

  const bundleOf = (name: 'k8-manager' | 'encryption-reconciler') =>
    bundle(imageSpec(name), join(p.dir, `${name}-bundle`), { version: 'bench' }).then((b) => join(b.dir, 'main.js'));
  const [k8ManagerMain, reconcilerMain] = [await bundleOf('k8-manager'), await bundleOf('encryption-reconciler')];
  const releases: { shard: number; reconciler: ControllerProcess; manager: ControllerProcess }[] = [];
  for (let shard = 0; shard < SHARDS; shard++) {
    const selector = `${SHARD_LABEL}=${shard}`;
    const common = { RESYNC_PERIOD: `${RESYNC_S}s`, LOG_LEVEL: 'warn', WORKERS: String(WORKERS) };
    const reconciler = await startEncryptionReconciler(p, {
      main: reconcilerMain,
      name: `er-${shard}`,
      leaseNamespace: 'kube-dc-system',
      env: {
        ...common,
        NODE_OPTIONS: NODE_OPTIONS.encryptionReconciler,
        LEASE_NAME: `er-${shard}`,
        CLUSTER_SELECTOR: selector,
        // cleanup in the first release; kmskey in every release with its share, or in the first alone.
        CONTROLLERS: [KMSKEY_SHARDED || shard === 0 ? 'kmskey' : '', 'kdccluster-openbao', shard === 0 ? 'cleanup' : '']
          .filter(Boolean)
          .join(','),
        ...(KMSKEY_SHARDED ? { KMSKEY_SHARD: `${shard}/${SHARDS}` } : {}),
        KMSKEY_DELETION_COUNTDOWN: '30d',
        KMSKEY_MIN_ROTATION: '1h',
        KMSKEY_MIN_ROTATION_ETCD: '7d',
        OPENBAO_DRIFT_CHECK_PERIOD: chartDriftCheckPeriod(),
      },
    });
    const manager = await startK8Manager(p, {
      main: k8ManagerMain,
      name: `k8m-${shard}`,
      leaseNamespace: 'kube-dc-system',
      selector,
      env: { ...common, NODE_OPTIONS: NODE_OPTIONS.k8Manager },
    });
    releases.push({ shard, reconciler, manager });
  }
  const processes = releases.flatMap((r) => [
    { name: `er-${r.shard}`, metricsUrl: r.reconciler.metricsUrl },
    { name: `k8m-${r.shard}`, metricsUrl: r.manager.metricsUrl },
  ]);
  const scrapeAll = async () =>
    Object.fromEntries(
      await Promise.all(
        processes.map(async (c) => [c.name, metricsOf(await (await fetch(`${c.metricsUrl}/metrics`)).text())] as const),
      ),
    );

  // The same processes before any KdcCluster exists: what they spend per second whatever the
  // tenants (Lease renewals, the token check, watches, timers), reported beside the steady figures
  // so a long resync period does not pass that off as per-tenant work. Not subtracted: a
  // difference of two windows measured minutes apart mixed their noise into the per-tenant figure.
  await sleep(IDLE_SETTLE_S * 1000);
  const idleBefore = await scrapeAll();
  await sleep(IDLE_S * 1000);
  const idleAfter = await scrapeAll();
  const idleCpuPerS = (name: string) => (idleAfter[name]!.cpuSeconds - idleBefore[name]!.cpuSeconds) / IDLE_S;

  // Watched, not listed over and over: a list of thousands of TenantControlPlanes every few
  // seconds was a load of its own on the apiserver the controllers share.
  const tcps = new Informer(kube, RESOURCES.tenantControlPlane);
  const attached = new Set<string>();
  tcps.on((event, tcp) => {
    const key = `${tcp.metadata?.namespace}/${tcp.metadata?.name}`;
    if (event !== 'delete' && isAttached(tcp)) attached.add(key);
    else attached.delete(key);
  });
  tcps.start();
  await tcps.waitForSync();
  const convergeMark = auditMark(p.openbao.auditLog);
  const t0 = performance.now();
  await inParallel(N, CREATE_CONCURRENCY, (i) =>
    kube.create(
      { ...RESOURCES.kdcCluster, namespace: `t${i}` },
      CLUSTER(`c${i}`, { [SHARD_LABEL]: String(i % SHARDS) }),
    ),
  );
  const createdS = (performance.now() - t0) / 1000;
  let convergeS = 0;
  while (!convergeS) {
    await sleep(2_000);
    const elapsed = (performance.now() - t0) / 1000;
    console.error(
      `${Math.round(elapsed)} s: ${tcps.list().length} TenantControlPlanes, ${attached.size} carry the plugin`,
    );
    if (attached.size === N) convergeS = elapsed;
    if (elapsed > 3_600) throw new Error('did not converge within an hour');
  }
  await tcps.stop();
  const converged = await scrapeAll();
  const convergeOpenBaoWrites = openBaoRequests(auditLinesSince(p.openbao.auditLog, convergeMark));
  console.error('controller OpenBao writes while converging:', JSON.stringify(convergeOpenBaoWrites.byPath));
  console.error('direct OpenBao writes:', JSON.stringify(directOpenBaoWrites.byPath));

  // The last status writes land; then two resync periods are counted.
  await sleep(SETTLE_S * 1000);
  const before = await scrapeAll();
  const steadyMark = auditMark(p.openbao.auditLog);
  await sleep(RESYNC_S * 1000 * 2);
  const after = await scrapeAll();
  const steadyLines = auditLinesSince(p.openbao.auditLog, steadyMark).filter(
    (line) => !line.includes('"path":"auth/token/renew-self"'),
  );
  const steadyOpenBao = openBaoRequests(steadyLines);
  const perProcess = processes.map(({ name }) => {
    const writes = diff(after[name]!.kubeWrites, before[name]!.kubeWrites);
    const reads = diff(after[name]!.kubeReads, before[name]!.kubeReads);
    const leases = writes['leases'] ?? 0;
    delete writes['leases'];
    const cpuS = (after[name]!.cpuSeconds - before[name]!.cpuSeconds) / 2;
    const idleS = idleCpuPerS(name) * RESYNC_S;
    return {
      name,
      kube_writes_per_steady_resync: sum(writes) / 2,
      lease_writes_per_steady_resync: leases / 2,
      kube_reads_per_steady_resync: sum(reads) / 2,
      kube_reads_by_resource_per_steady_resync: Object.fromEntries(
        Object.entries(reads).map(([resource, n]) => [resource, n / 2]),
      ),
      reconciles_per_steady_resync: (after[name]!.reconciles - before[name]!.reconciles) / 2,
      steady_resync_cpu_s: round(cpuS),
      // The target is per 1,000 clusters: each shard holds N / SHARDS.
      steady_resync_cpu_s_per_1000: round((cpuS * 1000 * SHARDS) / N),
      // The same process with no tenant, over as long as a resync period (measured over IDLE_S).
      idle_cpu_s_per_resync_period: round(idleS),
      rss_mb: Math.round(after[name]!.rssBytes / 2 ** 20),
      heap_used_mb: Math.round(after[name]!.heapUsedBytes / 2 ** 20),
      converge_kube_writes: sum(converged[name]!.kubeWrites),
    };
  });
  for (const r of releases) await Promise.all([r.manager.stop(), r.reconciler.stop()]);
  console.error('per process:', JSON.stringify(perProcess));
  console.error('steady OpenBao writes (two resyncs):', JSON.stringify(steadyOpenBao.byPath));
  const steadyReads = openBaoRequests(steadyLines, 'reads');
  console.error('steady OpenBao reads (two resyncs):', JSON.stringify(steadyReads.byPath));
  const directS = directMs / 1000;
  const max = (field: keyof (typeof perProcess)[number], prefix: string) =>
    Math.max(...perProcess.filter((x) => x.name.startsWith(prefix)).map((x) => Number(x[field])));
  console.log(
    JSON.stringify({
      bench: 'shards',
      clusters: N,
      shards: SHARDS,
      workers_per_controller: WORKERS,
      kmskey_sharded: KMSKEY_SHARDED,
      direct_workers: directWorkers,
      node_options: NODE_OPTIONS,
      resync_period_s: RESYNC_S,
      create_s: round(createdS, 1),
      converge_s: round(convergeS, 1),
      direct_writes_s: round(directS, 1),
      converge_vs_direct_ratio: round(convergeS / directS),
      direct_openbao_writes: directOpenBaoWrites.total,
      controller_openbao_writes: convergeOpenBaoWrites.total,
      openbao_writes_per_steady_resync: steadyOpenBao.total / 2,
      openbao_reads_per_steady_resync: steadyReads.total / 2,
      kube_writes_per_steady_resync: perProcess.reduce((s, x) => s + x.kube_writes_per_steady_resync, 0),
      k8m_max_rss_mb: max('rss_mb', 'k8m'),
      er_max_rss_mb: max('rss_mb', 'er'),
      k8m_max_steady_resync_cpu_s: max('steady_resync_cpu_s', 'k8m'),
      er_max_steady_resync_cpu_s: max('steady_resync_cpu_s', 'er'),
      idle_window_s: IDLE_S,
      er_max_idle_cpu_s_per_resync_period: max('idle_cpu_s_per_resync_period', 'er'),
      per_process: perProcess,
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
