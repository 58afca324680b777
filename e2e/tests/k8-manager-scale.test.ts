import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  openBaoAccessNames,
  isAttached,
  type KubeObject,
  type TenantControlPlane,
  RESOURCES,
} from '@kdc/shared';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';
import type { K8ManagerProcess } from '../src/k8-manager.ts';
import { metricSum } from '../src/metrics.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { createNamespace, kdc, management, platform, shardControllers, unique } from './helpers.ts';

const N = Number(process.env.KDC_K8M_STEADY_STATE_N ?? 200);
const tcpRef = (ns: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns });

describe(`k8-manager at scale: ${N} encrypted KdcClusters (no running tenants)`, () => {
  const kube = management();
  const id = unique('k8s');
  const stops: (() => Promise<void>)[] = [];
  let manager: K8ManagerProcess;
  let ns: string;
  beforeAll(async () => {
    ns = await createNamespace(kube, 'scale');
    const controllers = await shardControllers(id);
    manager = controllers[1];
    stops.push(...controllers.map((c) => c.stop));
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('configures every cluster, then writes nothing over two resyncs (Kubernetes and OpenBao)', async () => {
    // Names unlike other tests': OpenBao policy names are per organisation, a namesake would be refused.
    const clusters = Array.from({ length: N }, (_, i) => `k${i}`);
    for (let i = 0; i < N; i += 20) {
      await Promise.all(
        clusters.slice(i, i + 20).map((name) =>
          kube.create(kdc(ns), {
            apiVersion: KDC_API_VERSION,
            kind: 'KdcCluster',
            metadata: { name, labels: { 'kdc-e2e/k8m': id } },
            spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
          }),
        ),
      );
    }
    const started = Date.now();
    await waitFor(
      'every TCP attached',
      async () => {
        const tcps = await kube.list<TenantControlPlane & KubeObject>(tcpRef(ns));
        return tcps.items.filter((t) => isAttached(t)).length === N;
      },
      { timeoutMs: 300_000, intervalMs: 3_000 },
    );
    console.log(JSON.stringify({ clusters: N, attachedSeconds: (Date.now() - started) / 1000 }));
    await sleep(8_000); // let the last status writes and their watch events settle

    const snapshot = async () => {
      const [c, t] = await Promise.all([kube.list<KubeObject>(kdc(ns)), kube.list<KubeObject>(tcpRef(ns))]);
      return [...c.items, ...t.items].map((o) => `${o.kind}/${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort();
    };
    const counter = (prefix: string) => metricSum(manager.metricsUrl, prefix);
    const writes = () => counter('kdc_k8manager_writes_total');
    const ownedReads = async () => ({
      cache: await counter('kdc_k8manager_owned_reads_total{source="cache"}'),
      apiserver: await counter('kdc_k8manager_owned_reads_total{source="apiserver"}'),
    });
    const openBaoWrites = (lines: string[]) =>
      lines.filter((line) => {
        if (!line.includes('"type":"request"')) return false;
        const req = JSON.parse(line).request as { operation: string; path: string };
        return req.path.includes(`${ns}.`) ||
          clusters.some((c) => req.path.endsWith(`/${openBaoAccessNames(ns, c).pluginPolicy}`))
          ? !['read', 'list'].includes(req.operation)
          : false;
      }).length;
    const before = {
      objects: await snapshot(),
      writes: await writes(),
      reads: await ownedReads(),
      bao: auditMark(platform().openbao.auditLog),
    };
    expect(before.objects.length).toBe(2 * N);
    await sleep(2 * 5_000 + 2_000); // two resync periods (RESYNC_PERIOD=5s)
    expect(await snapshot()).toEqual(before.objects);
    expect(await writes()).toBe(before.writes);
    expect(openBaoWrites(auditLinesSince(platform().openbao.auditLog, before.bao))).toBe(0);
    // Its plugin ServiceAccount and backup CronJob were read every resync, from its caches, none from the apiserver.
    const reads = await ownedReads();
    expect(reads.cache - before.reads.cache).toBeGreaterThanOrEqual(2 * N);
    expect(reads.apiserver).toBe(before.reads.apiserver);
  }, 420_000);
});
