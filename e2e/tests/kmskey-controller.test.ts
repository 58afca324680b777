import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMSKEY_API_VERSION, OwnershipRegistry, transitKeyName, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { startEncryptionReconciler, type ReconcilerProcess } from '../src/encryption-reconciler.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { controllerNamespace, createNamespace, management, openBaoRoot, platform } from './helpers.ts';

type Key = KubeObject & { spec: Record<string, any>; status?: Record<string, any> };
const ref = (namespace: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace, name });
const condition = (k: Key | null, type: string) =>
  k?.status?.conditions?.find((c: { type: string }) => c.type === type);

describe('KMSKey controller (encryption-reconciler) on the real platform', () => {
  let controller: ReconcilerProcess;
  let leaseNs: string;
  const kube = management();
  const bao = openBaoRoot().transit();
  beforeAll(async () => {
    leaseNs = await controllerNamespace(kube);
    controller = await startEncryptionReconciler(platform(), {
      name: 'encryption-reconciler-a',
      leaseNamespace: leaseNs,
    });
  });
  afterAll(async () => {
    await controller?.stop();
  });

  const createKey = async (ns: string, name: string, spec: Record<string, unknown>) =>
    kube.create(ref(ns), { apiVersion: KMSKEY_API_VERSION, kind: 'KMSKey', metadata: { name }, spec });
  const get = (ns: string, name: string) => kube.getOrNull<Key>(ref(ns, name));
  const ready = (ns: string, name: string) =>
    waitFor(
      `${ns}/${name} Ready`,
      async () => {
        const k = await get(ns, name);
        return condition(k, 'Ready')?.status === 'True' ? k! : undefined;
      },
      { timeoutMs: 90_000 },
    ); // the shared leader may be busy with another file's 200 keys

  it.concurrent(
    'rotates every 30 s: exactly one new version per interval, across a controller restart',
    async () => {
      const ns = await createNamespace(kube, 'rot');
      await createKey(ns, 'etcd', { purpose: 'etcd', rotation: { enabled: true, interval: '30s' } });
      const key = await ready(ns, 'etcd');
      expect(key.status).toMatchObject({
        currentVersion: 1,
        keyId: `transit/keys/${ns}.etcd`,
        minDecryptionVersion: 1,
        observedGeneration: 1,
      });
      expect(condition(key, 'RotationScheduled')).toMatchObject({ status: 'True', reason: 'Scheduled' });
      expect(condition(key, 'OpenBaoMounted')).toMatchObject({ status: 'True' });
      const transit = (await bao.readKey(transitKeyName(ns, 'etcd')))!;
      expect(transit).toMatchObject({ exportable: false, deletionAllowed: false, type: 'aes256-gcm96' });
      const v1 = transit.versions[1]!;

      // Restart the controller between the first and second rotation (graceful: the lease hands over).
      await waitFor('version 2', async () => (await bao.readKey(transitKeyName(ns, 'etcd')))!.latestVersion >= 2, {
        timeoutMs: 45_000,
        intervalMs: 1000,
      });
      await controller.stop();
      controller = await startEncryptionReconciler(platform(), {
        name: 'encryption-reconciler-b',
        leaseNamespace: leaseNs,
      });

      // Three intervals after version 1 there must be exactly three rotations.
      await waitFor('version 4', async () => (await bao.readKey(transitKeyName(ns, 'etcd')))!.latestVersion >= 4, {
        timeoutMs: 150_000,
        intervalMs: 1000,
      });
      const after = (await bao.readKey(transitKeyName(ns, 'etcd')))!;
      expect(after.latestVersion).toBe(4);
      const times = [1, 2, 3, 4].map((v) => after.versions[v]!);
      expect(times[0]).toBe(v1);
      for (let i = 1; i < times.length; i++) {
        const gap = times[i]! - times[i - 1]!;
        expect(gap).toBeGreaterThanOrEqual(30); // never early, never twice in one interval
        expect(gap).toBeLessThan(60); // never a whole interval without a rotation (a skip)
      }
      await sleep(5_000);
      expect((await bao.readKey(transitKeyName(ns, 'etcd')))!.latestVersion).toBe(4);
      await waitFor('status to show version 4', async () => (await get(ns, 'etcd'))?.status?.currentVersion === 4, {
        timeoutMs: 15_000,
      });
      const latest = (await get(ns, 'etcd'))!;
      expect(Date.parse(latest.status!.lastRotatedTime)).toBe(times[3]! * 1000);
      expect(Date.parse(latest.status!.nextRotationTime)).toBe((times[3]! + 30) * 1000);
      const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>({
        ...RESOURCES.event,
        namespace: ns,
      });
      expect(events.items.filter((e) => e.reason === 'KeyRotated').length).toBeGreaterThanOrEqual(1);
    },
    240_000,
  );

  it.concurrent('an invalid spec gets Ready=False with a reason and creates nothing in OpenBao', async () => {
    const ns = await createNamespace(kube, 'bad');
    await createKey(ns, 'weekly', { rotation: { enabled: true, interval: '2w' } });
    await createKey(ns, 'open', { exportable: true });
    const weekly = await waitFor('weekly refused', async () => {
      const k = await get(ns, 'weekly');
      return condition(k, 'Ready')?.status === 'False' ? k : undefined;
    });
    expect(condition(weekly, 'Ready')).toMatchObject({
      reason: 'InvalidRotationInterval',
      message: expect.stringMatching(/unit "w"/),
    });
    const open = await waitFor('exportable refused', async () => condition(await get(ns, 'open'), 'Ready'));
    expect(open).toMatchObject({ status: 'False', reason: 'ExportableNotAllowed' });
    expect(await bao.readKey(transitKeyName(ns, 'weekly'))).toBeNull();
    expect(await bao.readKey(transitKeyName(ns, 'open'))).toBeNull();

    // A key in use keeps its purpose.
    await createKey(ns, 'fixed', { purpose: 'etcd' });
    const fixed = await ready(ns, 'fixed');
    // The purpose lock lives in OpenBao, beside the key, not on the tenant-editable object.
    expect((await new OwnershipRegistry(openBaoRoot()).read(transitKeyName(ns, 'fixed')))?.owner).toMatchObject({
      namespace: ns,
      kmsKey: 'fixed',
      uid: fixed.metadata?.uid,
      purpose: 'etcd',
      origin: 'created',
    });
    const before = await bao.readKey(transitKeyName(ns, 'fixed'));
    await kube.patch(ref(ns, 'fixed'), { spec: { purpose: 'application' } });
    const refused = await waitFor('purpose change refused', async () => {
      const c = condition(await get(ns, 'fixed'), 'Ready');
      return c?.reason === 'PurposeChangeRefused' ? c : undefined;
    });
    expect(refused).toMatchObject({ status: 'False', message: expect.stringMatching(/created for purpose etcd/) });
    expect(await bao.readKey(transitKeyName(ns, 'fixed'))).toEqual(before);
  });

  it.concurrent(
    'deletion never waits: retain keeps the key; schedule records a countdown that destroys it later; deleting the task cancels it',
    async () => {
      const ns = await createNamespace(kube, 'del');
      await createKey(ns, 'kept', {});
      await createKey(ns, 'doomed', { deletionPolicy: 'schedule' });
      await createKey(ns, 'reprieved', { deletionPolicy: 'schedule' });
      const uids = Object.fromEntries(
        await Promise.all(
          ['kept', 'doomed', 'reprieved'].map(async (n) => [n, (await ready(ns, n)).metadata!.uid!] as const),
        ),
      );

      await kube.delete(ref(ns, 'kept'));
      await waitFor('kept released', async () => (await get(ns, 'kept')) === null);
      expect(await bao.readKey(transitKeyName(ns, 'kept'))).not.toBeNull();

      const deletedAt = Date.now();
      await kube.delete(ref(ns, 'doomed'));
      await kube.delete(ref(ns, 'reprieved'));
      // Both objects go at once; the countdowns live in the controllers' namespace.
      await waitFor(
        'scheduled keys released',
        async () => (await get(ns, 'doomed')) === null && (await get(ns, 'reprieved')) === null,
      );
      const task = (n: string) =>
        kube.getOrNull<KubeObject & { data: Record<string, string> }>(
          at(RESOURCES.configMap, leaseNs, `kdc-cleanup-key-${uids[n]}`),
        );
      expect(JSON.parse((await task('doomed'))!.data['task.json']!)).toMatchObject({
        kind: 'destroyTransitKey',
        namespace: ns,
        kmsKey: 'doomed',
        uid: uids.doomed,
        candidates: [transitKeyName(ns, 'doomed'), `${ns}-doomed`],
      });
      expect(await bao.readKey(transitKeyName(ns, 'doomed'))).not.toBeNull();
      const scheduled = await waitFor('the DeletionScheduled event', async () => {
        const events = await kube.list<
          KubeObject & { reason: string; message: string; involvedObject: { name: string } }
        >(at(RESOURCES.event, ns));
        return events.items.find((e) => e.reason === 'DeletionScheduled' && e.involvedObject.name === 'doomed');
      });
      expect(scheduled.message).toMatch(/delete configmap kdc-cleanup-key-/);
      await kube.delete(at(RESOURCES.configMap, leaseNs, `kdc-cleanup-key-${uids.reprieved}`));

      await waitFor('doomed destroyed', async () => (await bao.readKey(transitKeyName(ns, 'doomed'))) === null, {
        timeoutMs: 60_000,
        intervalMs: 1000,
      });
      expect(Date.now()).toBeGreaterThanOrEqual(deletedAt + 19_000);
      await waitFor('its task done', async () => (await task('doomed')) === null);
      expect(await new OwnershipRegistry(openBaoRoot()).read(transitKeyName(ns, 'doomed'))).toBeNull();
      expect(await bao.readKey(transitKeyName(ns, 'reprieved'))).not.toBeNull();
      expect(await new OwnershipRegistry(openBaoRoot()).read(transitKeyName(ns, 'reprieved'))).toMatchObject({
        owner: { uid: uids.reprieved },
      });
    },
  );
});
