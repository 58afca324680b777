import { afterAll, describe, expect, it } from 'vitest';
import { KDC_API_VERSION, LABELS, RESOURCES, isAttached, type KubeObject, type TenantControlPlane } from '@kdc/shared';
import { ISOLATED_LABEL, startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { waitFor } from '../src/wait.ts';
import { controllerNamespace, createNamespace, kdc, management, platform, unique } from './helpers.ts';

type Cluster = KubeObject & { status?: { conditions?: { type: string; status: string; reason: string }[] } };
const preflight = (c: Cluster | null) => c?.status?.conditions?.find((x) => x.type === 'KMSPreflight');

// k8-manager does not poll a cluster waiting for its pre-flight (requeue.ts): the verdict is a
// condition on the KdcCluster itself, so its watch event must bring the cluster back. Proven with
// both controllers on a 10-minute resync and observe period: only the watch can attach in time.
describe('k8-manager waits for the pre-flight through the KdcCluster watch', () => {
  const kube = management();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('attaches the plugin within seconds of the pre-flight passing, with no poll and no resync due', async () => {
    const id = unique('kw');
    const lease = await createNamespace(kube, 'lease');
    // The KMSKey controller, as every test file runs it (the shared Lease: whichever process leads serves all).
    const shared = await startEncryptionReconciler(platform(), {
      name: unique(`er-shared-${id}`),
      leaseNamespace: await controllerNamespace(kube),
    });
    stops.push(shared.stop);
    const slow = { RESYNC_PERIOD: '10m', OBSERVE_PERIOD: '10m' };
    const manager = await startK8Manager(platform(), {
      name: `k8m-${id}`,
      leaseNamespace: lease,
      selector: `${ISOLATED_LABEL}=${id}`,
      env: slow,
    });
    stops.push(manager.stop);
    const ns = await createNamespace(kube, 'kwatch');
    const name = unique('c');
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      // Isolated: the shared encryption-reconcilers leave it alone (their KMSKey controller makes its key Ready).
      metadata: { name, labels: { [ISOLATED_LABEL]: id } },
      spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
    });
    const tcpRef = { ...RESOURCES.tenantControlPlane, namespace: ns, name: `${name}-cp` };
    // Positive control: k8-manager ran (it made the TCP) and now waits, unattached, for a pre-flight nobody runs yet.
    await waitFor('the TCP', () => kube.getOrNull<TenantControlPlane & KubeObject>(tcpRef), { timeoutMs: 60_000 });
    const waiting = await waitFor(
      'k8-manager waiting for the pre-flight',
      async () => {
        const c = await kube.getOrNull<Cluster>(kdc(ns, name));
        return c?.status?.conditions?.some((x) => x.reason === 'WaitingForPreflight') ? c : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(preflight(waiting)).toBeUndefined();
    expect(isAttached(await kube.get<TenantControlPlane & KubeObject>(tcpRef))).toBe(false);

    const reconciler = await startEncryptionReconciler(platform(), {
      name: `er-${id}`,
      leaseNamespace: lease,
      env: { ...slow, CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}`, CONTROLLERS: 'kdccluster-openbao' },
    });
    stops.push(reconciler.stop);
    await waitFor(
      'the pre-flight',
      async () => preflight(await kube.getOrNull<Cluster>(kdc(ns, name)))?.status === 'True',
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const passed = Date.now();
    await waitFor(
      'the plugin attached',
      async () => isAttached(await kube.get<TenantControlPlane & KubeObject>(tcpRef)),
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(Date.now() - passed).toBeLessThan(30_000); // the resync and observe period are 10 minutes

    // What it made for the cluster is watched too (its label-selected caches): the plugin's
    // ServiceAccount, deleted, is back within seconds, carrying the shard's label, not at a resync.
    const saRef = { ...RESOURCES.serviceAccount, namespace: ns, name: `${name}-kms-plugin` };
    const sa = await kube.get<KubeObject>(saRef);
    expect(sa.metadata?.labels).toEqual({ [ISOLATED_LABEL]: id, [LABELS.kdcCluster]: name });
    await kube.delete(saRef);
    const deleted = Date.now();
    await waitFor(
      'the plugin ServiceAccount made again',
      async () => {
        const again = await kube.getOrNull<KubeObject>(saRef);
        return again && again.metadata?.uid !== sa.metadata?.uid ? again : null;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(Date.now() - deleted).toBeLessThan(30_000);
  });
});
