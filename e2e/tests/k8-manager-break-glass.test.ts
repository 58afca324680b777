import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  KDC_API_VERSION,
  clusterNames,
  isAttached,
  openBaoAccessNames,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { LOCAL_IMAGES } from '../src/images.ts';
import { startKamajiRunner } from '../src/kamaji-runner.ts';
import { sleep, waitFor } from '../src/wait.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  openBaoRoot,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

// Issue 12, operation 7 (SPEC 3.1, 5): the break-glass annotation detaches KMS without the disable
// migration only while its time is at most an hour old; a leftover one changes nothing. After a
// detach, every reconcile warns again (an Event whose count grows) and the condition stays.

type Cluster = KubeObject & {
  metadata: { generation?: number };
  status?: {
    conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[];
  };
};
type Event = KubeObject & {
  type: string;
  reason: string;
  message: string;
  count?: number;
  involvedObject: { name: string; kind: string };
};
const tcpRef = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const OBSERVE_SECONDS = 3;

describe('k8-manager: break-glass is honoured only while recent, and warns on every reconcile', () => {
  const kube = management();
  const root = openBaoRoot();
  const id = unique('bg');
  const cluster = 'glass';
  const names = clusterNames(cluster);
  let ns: string;
  const processes: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    ns = await createNamespace(kube, 'bg');
    processes.push(...(await shardControllers(id, { OBSERVE_PERIOD: `${OBSERVE_SECONDS}s` })));
    processes.push(await startKamajiRunner(platform(), { images: LOCAL_IMAGES, namespaces: [ns] }));
  }, 120_000);
  afterAll(async () => {
    for (const p of processes.reverse()) await p.stop();
  });

  const tcp = () => kube.get<TenantControlPlane & KubeObject>(tcpRef(ns, names.tenantControlPlane));
  const get = () => kube.get<Cluster>(kdc(ns, cluster));
  const warnings = async () =>
    (await kube.list<Event>(at(RESOURCES.event, ns), { fieldSelector: `involvedObject.name=${cluster}` })).items.filter(
      (e) => e.type === 'Warning' && e.reason === 'ForceDisabled',
    );
  const warningCount = async () => (await warnings()).reduce((sum, e) => sum + (e.count ?? 1), 0);
  const breakGlass = (value: string) =>
    kube.patch(kdc(ns, cluster), { metadata: { annotations: { [ANNOTATIONS.forceDisableConfirmed]: value } } });

  it('refuses a 2-hour-old confirmation with no side effect, detaches with a fresh one, then warns on every reconcile', async () => {
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    });
    await waitFor('cluster Ready', async () => condition(await get(), 'Ready')?.status === 'True', {
      timeoutMs: 180_000,
      intervalMs: 1000,
    });
    const access = openBaoAccessNames(ns, cluster);
    expect(await root.readPolicy(access.pluginPolicy)).not.toBeNull();

    // A leftover confirmation from two hours ago, then enabled: false.
    await breakGlass(rfc3339(Date.now() - 2 * 3600_000));
    await kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd: { enabled: false } } } });
    const generation = (await get()).metadata.generation!;
    const refused = await waitFor(
      'ForceDisableAnnotationStale',
      async () => {
        const c = (await get()).status?.conditions?.find((x) => x.type === 'EncryptionConfigError');
        return c?.status === 'True' && c.observedGeneration === generation ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(refused.reason).toBe('ForceDisableAnnotationStale');
    expect(refused.message).toMatch(/is 2h\d*s? old; break-glass is honoured only within 1h/);
    const tcpVersion = (await tcp()).metadata?.resourceVersion;
    // Two resyncs (5 s each): still attached, the TCP untouched, OpenBao access kept, no warning.
    await sleep(2 * 5_000 + 2_000);
    expect(isAttached(await tcp())).toBe(true);
    expect((await tcp()).metadata?.resourceVersion).toBe(tcpVersion);
    expect(await root.readPolicy(access.pluginPolicy)).not.toBeNull();
    expect(await root.readAuthRole('k8s-host', access.pluginRole)).not.toBeNull();
    expect(await warnings()).toEqual([]);
    expect(condition(await get(), 'ForceDisabled')).toBeUndefined();

    // The same person confirms now: honoured (the positive control for "nothing happened" above).
    await breakGlass(rfc3339(Date.now()));
    await waitFor('KMS detached', async () => !isAttached(await tcp()), { timeoutMs: 60_000, intervalMs: 500 });
    const detached = await waitFor(
      'ForceDisabled=True',
      async () => {
        const c = await get();
        return condition(c, 'ForceDisabled')?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(condition(detached, 'Ready')).toMatchObject({ status: 'True', reason: 'ForceDisabled' });
    expect(condition(detached, 'EncryptionConfigError')?.status).toBe('False');

    // Every reconcile warns again: the Event's count grows over two observe periods, the condition stays.
    const first = await waitFor('a ForceDisabled warning', async () => (await warningCount()) || undefined, {
      timeoutMs: 30_000,
      intervalMs: 500,
    });
    const later = await waitFor(
      'the warning to repeat twice',
      async () => {
        const n = await warningCount();
        return n >= first + 2 ? n : undefined;
      },
      { timeoutMs: 6 * OBSERVE_SECONDS * 1000 + 10_000, intervalMs: 500 },
    );
    expect(later).toBeGreaterThanOrEqual(first + 2);
    expect((await warnings())[0]!.message).toContain(ANNOTATIONS.forceDisableConfirmed);

    // Long after, the annotation is stale, and still present: the warnings and the condition go on.
    await breakGlass(rfc3339(Date.now() - 2 * 3600_000));
    const stale = await warningCount();
    await waitFor('warnings with a stale annotation still there', async () => (await warningCount()) >= stale + 2, {
      timeoutMs: 6 * OBSERVE_SECONDS * 1000 + 10_000,
      intervalMs: 500,
    });
    const still = await get();
    expect(condition(still, 'ForceDisabled')?.status).toBe('True');
    expect(condition(still, 'Ready')?.reason).toBe('ForceDisabled');
    expect(condition(still, 'EncryptionConfigError')?.status).toBe('False');

    // Removing it ends the warnings: False, and Ready back to Reconciled.
    await kube.patch(kdc(ns, cluster), { metadata: { annotations: { [ANNOTATIONS.forceDisableConfirmed]: null } } });
    const ended = await waitFor(
      'ForceDisabled=False',
      async () => {
        const c = await get();
        return condition(c, 'ForceDisabled')?.status === 'False' ? c : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(condition(ended, 'Ready')).toMatchObject({ status: 'True', reason: 'Reconciled' });
    const after = await warningCount();
    await sleep(3 * OBSERVE_SECONDS * 1000);
    expect(await warningCount()).toBe(after);
  }, 360_000);
});
