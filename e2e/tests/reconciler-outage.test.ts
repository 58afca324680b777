import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMSKEY_API_VERSION, type KubeClient, type KubeObject, RESOURCES } from '@kdc/shared';
import { startEncryptionReconciler, type ReconcilerProcess } from '../src/encryption-reconciler.ts';
import { isolatedManagement, type IsolatedManagement } from '../src/isolated.ts';
import { metricValue } from '../src/metrics.ts';
import type { OpenBaoServer } from '../src/openbao.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { platform, unique } from './helpers.ts';

type Key = KubeObject & {
  status?: {
    currentVersion?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
};
const ref = (name?: string) => ({ ...RESOURCES.kmsKey, namespace: 'default', name });
const ready = (k: Key | null) => k?.status?.conditions?.find((c) => c.type === 'Ready');
const errorCount = (url: string) => metricValue(url, /kdc_reconcile_total\{controller="kmskey",result="error"\} (\d+)/);

describe('encryption-reconciler while OpenBao is unreachable', () => {
  // Its own management apiserver and OpenBao, so the outage and this controller disturb no other test.
  let own: IsolatedManagement;
  let bao: OpenBaoServer;
  let controller: ReconcilerProcess;
  let kube: KubeClient;
  beforeAll(async () => {
    own = await isolatedManagement(platform(), unique('er-outage'), { openbao: true });
    ({ kube, bao } = own as Required<IsolatedManagement>);
    controller = await startEncryptionReconciler(own.state, {
      name: 'encryption-reconciler-outage',
      leaseNamespace: 'kube-dc-system',
      env: { RESYNC_PERIOD: '1h' },
    });
  });
  afterAll(async () => {
    await controller?.stop();
    await own?.stop();
  });

  it('says so in conditions, backs off, does not crash, and converges when OpenBao returns', async () => {
    await kube.create(ref(), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'before' },
      spec: {},
    });
    await waitFor('before Ready', async () => ready(await kube.getOrNull<Key>(ref('before')))?.status === 'True', {
      timeoutMs: 30_000,
    });

    await bao.process.kill();
    await kube.create(ref(), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'during' },
      spec: {},
    });
    const refused = await waitFor(
      'during to report the outage',
      async () => {
        const c = ready(await kube.getOrNull<Key>(ref('during')));
        return c?.reason === 'OpenBaoUnavailable' ? c : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(refused).toMatchObject({
      status: 'False',
      message: expect.stringMatching(/unreachable.*retrying with backoff/),
    });
    const errorsAt = await errorCount(controller.metricsUrl);
    await sleep(15_000);
    const errorsIn15s = (await errorCount(controller.metricsUrl)) - errorsAt;
    // Exponential backoff per key: a handful of attempts in 15 s, not a hot loop.
    expect(errorsIn15s).toBeGreaterThan(0);
    expect(errorsIn15s).toBeLessThan(12);
    expect(controller.process.running).toBe(true);

    await bao.restart();
    await waitFor(
      'both keys Ready after OpenBao returns',
      async () => {
        const [a, b] = await Promise.all([kube.getOrNull<Key>(ref('before')), kube.getOrNull<Key>(ref('during'))]);
        return ready(a)?.status === 'True' && ready(b)?.status === 'True';
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    expect((await bao.client().transit().readKey('default.during'))?.latestVersion).toBe(1);
  }, 200_000);
});
