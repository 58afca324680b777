import { afterAll, describe, expect, it } from 'vitest';
import { buildTenantControlPlane } from '@kdc/k8-manager';
import { KDC_API_VERSION, LABELS, RESOURCES, at, type KubeObject } from '@kdc/shared';
import { ISOLATED_LABEL } from '../src/encryption-reconciler.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { createNamespace, kdc, management, platform, unique } from './helpers.ts';

// A sharded k8-manager caches only the TenantControlPlanes carrying its shard's labels: the ones it
// makes get them, and one it finds without them (made before sharding, or its cluster moved from
// another shard) is labelled once. Another shard's control plane is left as it is.
describe('k8-manager shards its TenantControlPlanes by the labels its CLUSTER_SELECTOR reads', () => {
  const kube = management();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('labels the TCPs it makes and adopts, leaves another shard alone, then writes nothing', async () => {
    const id = unique('shard');
    const other = `${id}-other`;
    const lease = await createNamespace(kube, 'lease');
    const manager = await startK8Manager(platform(), {
      name: `k8m-${id}`,
      leaseNamespace: lease,
      selector: `${ISOLATED_LABEL}=${id}`,
      env: { RESYNC_PERIOD: '3s' },
    });
    stops.push(manager.stop);
    const ns = await createNamespace(kube, 'kshard');
    const spec = { version: 'v1.35.0', controlPlane: { replicas: 1 } };
    const tcpRef = (cluster: string) => at(RESOURCES.tenantControlPlane, ns, `${cluster}-cp`);
    const labelsOf = async (cluster: string) => (await kube.get<KubeObject>(tcpRef(cluster))).metadata?.labels ?? {};

    // Control planes that exist before their clusters: one made before sharding (no shard label),
    // one its cluster brought from another shard, and another shard's own.
    await kube.create(at(RESOURCES.tenantControlPlane, ns), buildTenantControlPlane(ns, 'old', spec));
    await kube.create(
      at(RESOURCES.tenantControlPlane, ns),
      buildTenantControlPlane(ns, 'moved', spec, { [ISOLATED_LABEL]: other }),
    );
    await kube.create(
      at(RESOURCES.tenantControlPlane, ns),
      buildTenantControlPlane(ns, 'foreign', spec, { [ISOLATED_LABEL]: other }),
    );
    const foreignBefore = await kube.get<KubeObject>(tcpRef('foreign'));
    for (const [name, shard] of [
      ['old', id],
      ['moved', id],
      ['fresh', id],
      ['foreign', other],
    ] as const)
      await kube.create(kdc(ns), {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name, labels: { [ISOLATED_LABEL]: shard } },
        spec,
      });

    for (const cluster of ['fresh', 'old', 'moved'])
      await waitFor(
        `${cluster}-cp labelled for shard ${id}`,
        async () => (await kube.getOrNull<KubeObject>(tcpRef(cluster)))?.metadata?.labels?.[ISOLATED_LABEL] === id,
        { timeoutMs: 30_000, intervalMs: 250 },
      );
    // The label is added beside what was there, not in its place.
    for (const cluster of ['fresh', 'old', 'moved'])
      expect(await labelsOf(cluster)).toEqual({ [ISOLATED_LABEL]: id, [LABELS.kdcCluster]: cluster });

    // Two resyncs later: nothing written to any of them, and the other shard's TCP never touched.
    const versions = async () =>
      Promise.all(
        ['fresh', 'old', 'moved', 'foreign'].map(
          async (c) => (await kube.get<KubeObject>(tcpRef(c))).metadata?.resourceVersion,
        ),
      );
    const before = await versions();
    await sleep(7_000);
    expect(await versions()).toEqual(before);
    expect(before[3]).toBe(foreignBefore.metadata?.resourceVersion);
    expect(await labelsOf('foreign')).toEqual({ [ISOLATED_LABEL]: other, [LABELS.kdcCluster]: 'foreign' });
  }, 120_000);
});
