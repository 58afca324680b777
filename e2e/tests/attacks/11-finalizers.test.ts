import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FINALIZERS,
  KDC_API_VERSION,
  KMSKEY_API_VERSION,
  OPENBAO_K8S_AUTH_MOUNT,
  type KubeClient,
  clusterNames,
  kdcClusterSpecSchema,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { buildAutoKey } from '@kdc/k8-manager';
import { startEncryptionReconciler, type ReconcilerProcess } from '../../src/encryption-reconciler.ts';
import { isolatedManagement, type IsolatedManagement } from '../../src/isolated.ts';
import type { OpenBaoServer } from '../../src/openbao.ts';
import { waitFor } from '../../src/wait.ts';
import { kdc, platform, unique } from '../helpers.ts';

// Finding 11: finalizers wedged deletion. A KdcCluster could not be deleted while OpenBao was
// down, a `retain` KMSKey called OpenBao before it let go, and a `schedule` KMSKey stayed in
// Terminating (and held its namespace) for the whole 30-day countdown. Deletion must wait on
// nothing that need not happen now; what must still happen is recorded and finished later.

type Obj = KubeObject & { status?: { conditions?: { type: string; status: string; reason: string }[] } };
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const cleanupTasks = (kube: KubeClient) =>
  kube.list<KubeObject & { data: Record<string, string> }>(at(RESOURCES.configMap, 'kube-dc-system'), {
    labelSelector: 'kube-dc.com/cleanup',
  });
const ready = (o: Obj | null) => o?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
const metric = async (url: string, name: string) =>
  Number(
    new RegExp(`^${name.replace(/[{}]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(
      await (await fetch(`${url}/metrics`)).text(),
    )?.[1] ?? NaN,
  );

describe('attack 11: deletion never waits on OpenBao or on a countdown', () => {
  // Its own management apiserver and OpenBao: the outage disturbs no other test.
  let own: IsolatedManagement;
  let bao: OpenBaoServer;
  let controller: ReconcilerProcess;
  let kube: KubeClient;
  const ns = 'tenant';

  beforeAll(async () => {
    own = await isolatedManagement(platform(), unique('attack11'), { openbao: true });
    ({ kube, bao } = own as Required<IsolatedManagement>);
    await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    // A real 30-day countdown: the KMSKey must not wait for it.
    controller = await startEncryptionReconciler(own.state, {
      name: 'er-attack11',
      leaseNamespace: 'kube-dc-system',
      env: { KMSKEY_DELETION_COUNTDOWN: '30d' },
    });
  }, 180_000);
  afterAll(async () => {
    await controller?.stop();
    await own?.stop();
  });

  it('a cluster, a retain key and a schedule key go while OpenBao is down; the OpenBao cleanup finishes when it returns', async () => {
    const spec = kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } });
    await kube.create(kkey(ns), buildAutoKey(ns, 'web', spec));
    await kube.create(kkey(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'kept' },
      spec: {},
    });
    await kube.create(kkey(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'doomed' },
      spec: { deletionPolicy: 'schedule' },
    });
    await kube.create(kdc(ns), { apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name: 'web' }, spec });
    const root = bao.client();
    // The cluster's role, under whichever naming scheme the controller uses (this attack also runs
    // against the code before the fix, which named it tcp-<cluster>).
    let role = '';
    await waitFor(
      "keys Ready, the cluster's role written and its finalizer on",
      async () => {
        const keys = await Promise.all(['web-etcd', 'kept', 'doomed'].map((k) => kube.getOrNull<Obj>(kkey(ns, k))));
        const cluster = await kube.getOrNull<Obj>(kdc(ns, 'web'));
        for (const name of [`tcp-${ns}.web`, 'tcp-web'])
          if ((await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, name)) !== null) role = name;
        return keys.every(ready) && cluster?.metadata?.finalizers?.includes(FINALIZERS.openBaoAccess) && role !== '';
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const uid = (await kube.get<Obj>(kdc(ns, 'web'))).metadata!.uid!;

    await bao.process.kill();
    const deleted = Date.now();
    await kube.delete(kdc(ns, 'web'));
    await kube.delete(kkey(ns, 'kept'));
    await kube.delete(kkey(ns, 'doomed'));
    await waitFor(
      'all three gone while OpenBao is down',
      async () => {
        const left = await Promise.all([
          kube.getOrNull(kdc(ns, 'web')),
          kube.getOrNull(kkey(ns, 'kept')),
          kube.getOrNull(kkey(ns, 'doomed')),
        ]);
        return left.every((o) => o === null);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    console.log(JSON.stringify({ deletedWithOpenBaoDownSeconds: (Date.now() - deleted) / 1000 }));

    // What must still happen is recorded where tenants cannot reach, and visible.
    const tasks = (await cleanupTasks(kube)).items.map(
      (t) => JSON.parse(t.data['task.json']!) as { kind: string; uid?: string; due?: string },
    );
    expect(tasks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'removeClusterAccess', namespace: ns, cluster: 'web', uid }),
        expect.objectContaining({ kind: 'destroyTransitKey', namespace: ns, kmsKey: 'doomed' }),
      ]),
    );
    expect(Date.parse(tasks.find((t) => t.kind === 'destroyTransitKey')!.due!)).toBeGreaterThan(
      Date.now() + 29 * 86_400_000,
    );
    await waitFor(
      'the pending cleanup in the metrics',
      async () => (await metric(controller.metricsUrl, 'kdc_cleanup_tasks_pending{kind="removeClusterAccess"}')) === 1,
      { timeoutMs: 30_000 },
    );

    await bao.restart();
    await waitFor(
      "the cluster's role and policy removed once OpenBao is back",
      async () =>
        (await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role)) === null && (await root.readPolicy(role)) === null,
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    await waitFor(
      'its task finished',
      async () => (await cleanupTasks(kube)).items.every((t) => !t.data['task.json']!.includes('removeClusterAccess')),
      { timeoutMs: 30_000 },
    );
    // The keys themselves: kept, and doomed only after its countdown.
    for (const name of [`${ns}.kept`, `${ns}.doomed`, `${ns}.${clusterNames('web').autoEtcdKey}`])
      expect(await root.transit().readKey(name), name).not.toBeNull();
    expect((await cleanupTasks(kube)).items.some((t) => t.data['task.json']!.includes('"destroyTransitKey"'))).toBe(
      true,
    );
  }, 300_000);
});
