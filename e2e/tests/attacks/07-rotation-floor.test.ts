import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMSKEY_API_VERSION, type KubeObject, RESOURCES } from '@kdc/shared';
import { startEncryptionReconciler, type ReconcilerProcess } from '../../src/encryption-reconciler.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import { controllerNamespace, createNamespace, management, openBaoRoot, platform, unique } from '../helpers.ts';

// Finding 7: a 1 s rotation interval was accepted and requeued at once, and the KMSKey queue was
// FIFO for all tenants: 200 such keys kept the shared controller and OpenBao busy for everyone.
// Here the shared test controllers run with a 20 s floor (production: 1h, 7d for etcd keys).

type Key = KubeObject & {
  status?: { keyId?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const readyOf = (k: Key | null | undefined) => k?.status?.conditions?.find((c) => c.type === 'Ready');
const N = 150;

describe('attack 7: rotation has a floor, and one tenant cannot starve the others', () => {
  const kube = management();
  let controller: ReconcilerProcess;
  beforeAll(async () => {
    controller = await startEncryptionReconciler(platform(), {
      name: unique('er-attack07'),
      leaseNamespace: await controllerNamespace(kube),
    });
  }, 120_000);
  afterAll(async () => {
    await controller?.stop();
  });

  const create = (ns: string, name: string, spec: Record<string, unknown>) =>
    kube.create(kkey(ns), { apiVersion: KMSKEY_API_VERSION, kind: 'KMSKey', metadata: { name }, spec });

  it('a 1 s interval is refused with the floor in the message, and nothing is created or rotated in OpenBao', async () => {
    const ns = await createNamespace(kube, 'spin');
    await create(ns, 'spin', { purpose: 'application', rotation: { enabled: true, interval: '1s' } });
    await create(ns, 'etcd-spin', { purpose: 'etcd', rotation: { enabled: true, interval: '10s' } });
    await create(ns, 'sane', { purpose: 'application', rotation: { enabled: true, interval: '20s' } }); // positive control
    for (const name of ['spin', 'etcd-spin']) {
      const ready = await waitFor(
        `${name} refused`,
        async () => {
          const c = readyOf(await kube.getOrNull<Key>(kkey(ns, name)));
          return c?.status === 'False' && c.reason !== 'OpenBaoUnavailable' ? c : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(ready).toMatchObject({
        reason: 'RotationIntervalTooShort',
        message: expect.stringMatching(/choose at least 20s/),
      });
    }
    await waitFor(
      'the sane key Ready',
      async () => readyOf(await kube.getOrNull<Key>(kkey(ns, 'sane')))?.status === 'True',
      { timeoutMs: 60_000 },
    );
    await sleep(5_000);
    const transitKeys = await openBaoRoot().transit().listKeys();
    expect(transitKeys.filter((k) => k.startsWith(ns))).toEqual([`${ns}.sane`]);
    // The controller under test may not be the one leading (the Lease is shared): it exports the
    // fairness gauges, whichever instance fills them.
    const metrics = await (await fetch(`${controller.metricsUrl}/metrics`)).text();
    expect(metrics).toMatch(/^# TYPE kdc_workqueue_largest_namespace_depth gauge$/m);
    expect(metrics).toMatch(/^# TYPE kdc_kmskey_refusals_total counter$/m);
  }, 120_000);

  it(`a tenant that creates ${N} keys at once does not make another tenant's key wait behind them`, async () => {
    const noisy = await createNamespace(kube, 'noisy');
    const quiet = await createNamespace(kube, 'quiet');
    for (let i = 0; i < N; i += 25)
      await Promise.all(Array.from({ length: Math.min(25, N - i) }, (_, j) => create(noisy, `k${i + j}`, {})));
    const started = Date.now();
    await create(quiet, 'mine', {});
    await waitFor(
      "the quiet tenant's key Ready",
      async () => readyOf(await kube.getOrNull<Key>(kkey(quiet, 'mine')))?.status === 'True',
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const quietSeconds = (Date.now() - started) / 1000;
    const noisyReady = (await kube.list<Key>(kkey(noisy))).items.filter((k) => readyOf(k)?.status === 'True').length;
    console.log(JSON.stringify({ quietReadySeconds: quietSeconds, noisyReadyAtThatTime: noisyReady, noisyTotal: N }));
    // Served round-robin, the quiet key is Ready while most of the noisy tenant's keys still wait.
    expect(noisyReady).toBeLessThan(N / 2);
    await waitFor(
      'every noisy key Ready (positive control)',
      async () => (await kube.list<Key>(kkey(noisy))).items.every((k) => readyOf(k)?.status === 'True'),
      { timeoutMs: 240_000, intervalMs: 2000 },
    );
  }, 400_000);
});
