import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMSKEY_API_VERSION, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { kdcEnv, startKdc } from '../../src/cli-harness.ts';
import { startEncryptionReconciler, type ReconcilerProcess } from '../../src/encryption-reconciler.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import { controllerNamespace, management, openBaoRoot, platform, unique } from '../helpers.ts';

// Finding 1: `<namespace>-<kmskey>` gave acme-shop/prod-web-etcd and acme-shop-prod/web-etcd one
// Transit key, and the KMSKey controller adopted whatever key it found under its name. The
// neighbour owns a namespace whose name extends the victim's; it can create KMSKeys there.

type Key = KubeObject & {
  spec: Record<string, unknown>;
  status?: {
    keyId?: string;
    currentVersion?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
};
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const readyOf = (k: Key | null) => k?.status?.conditions?.find((c) => c.type === 'Ready');
const transitOf = (k: Key) => k.status!.keyId!.split('/').pop()!;

describe("attack 1: a neighbour cannot reach another tenant's Transit key through a colliding name", () => {
  const kube = management();
  const bao = openBaoRoot().transit();
  let controller: ReconcilerProcess;
  const base = unique('shop');
  const victimNs = base;
  const neighbourNs = `${base}-prod`;

  beforeAll(async () => {
    controller = await startEncryptionReconciler(platform(), {
      name: unique('er-attack01'),
      leaseNamespace: await controllerNamespace(kube),
    });
    for (const name of [victimNs, neighbourNs])
      await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }, 120_000);
  afterAll(async () => {
    await controller?.stop();
  });

  const create = (ns: string, name: string, spec: Record<string, unknown>) =>
    kube.create(kkey(ns), { apiVersion: KMSKEY_API_VERSION, kind: 'KMSKey', metadata: { name }, spec });
  const get = (ns: string, name: string) => kube.getOrNull<Key>(kkey(ns, name));
  const settled = (ns: string, name: string) =>
    waitFor(
      `${ns}/${name} settled`,
      async () => {
        const k = await get(ns, name);
        const ready = readyOf(k);
        return ready && !['Creating', 'Claiming', 'OpenBaoUnavailable'].includes(ready.reason) ? k! : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );

  it("the neighbour's colliding KMSKey gets its own key: it can neither rotate, pre-empt nor destroy the victim's", async () => {
    // Pre-emption: the neighbour creates its chacha20 key first, hoping the victim adopts it.
    await create(neighbourNs, 'web-etcd', {
      purpose: 'etcd',
      algorithm: 'chacha20-poly1305',
      deletionPolicy: 'schedule',
      rotation: { enabled: true, interval: '20s' },
    });
    const neighbour = await settled(neighbourNs, 'web-etcd');
    await create(victimNs, 'prod-web-etcd', { purpose: 'etcd' });
    const victim = await settled(victimNs, 'prod-web-etcd');

    // The victim is Ready with its own aes256 key (not stuck in AlgorithmMismatch on the neighbour's).
    expect(readyOf(victim)).toMatchObject({ status: 'True', reason: 'KeyReady' });
    expect(readyOf(neighbour)?.status).toBe('True');
    expect(transitOf(victim)).not.toBe(transitOf(neighbour));
    const victimKey = transitOf(victim);
    expect((await bao.readKey(victimKey))?.type).toBe('aes256-gcm96');

    // The neighbour's 20 s rotation rotates the neighbour's key (positive control), never the victim's.
    await waitFor(
      "the neighbour's key rotated",
      async () => ((await bao.readKey(transitOf(neighbour)))?.latestVersion ?? 0) >= 2,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect((await bao.readKey(victimKey))?.latestVersion).toBe(1);

    // Scheduled destruction of the neighbour's KMSKey destroys the neighbour's key only (countdown 20 s here).
    await kube.delete(kkey(neighbourNs, 'web-etcd'));
    await waitFor("the neighbour's key destroyed", async () => (await bao.readKey(transitOf(neighbour))) === null, {
      timeoutMs: 90_000,
      intervalMs: 1000,
    });
    expect(await bao.readKey(victimKey)).not.toBeNull();
    expect(readyOf(await get(victimNs, 'prod-web-etcd'))?.status).toBe('True');
  }, 240_000);

  it('a key the platform did not create for this KMSKey is never adopted, and a re-created KMSKey does not inherit a retained key', async () => {
    const ns = victimNs;
    // Somebody with OpenBao access pre-creates keys under both names a KMSKey called "planted" could use.
    for (const name of [`${ns}.planted`, `${ns}-planted`]) await bao.createKey(name, { type: 'chacha20-poly1305' });
    await sleep(1100); // creationTimestamp has 1 s resolution: the KMSKey must be younger than the keys
    await create(ns, 'planted', { purpose: 'etcd', rotation: { enabled: true, interval: '20s' } });
    const planted = await settled(ns, 'planted');
    expect(readyOf(planted)).toMatchObject({
      status: 'False',
      reason: 'TransitKeyNotOwned',
      message: expect.stringMatching(/kubectl kdc keys adopt/),
    });
    expect(planted.status?.keyId).toBeUndefined();
    await sleep(25_000); // past one rotation interval: the planted keys are never rotated
    for (const name of [`${ns}.planted`, `${ns}-planted`]) expect((await bao.readKey(name))?.latestVersion).toBe(1);

    // retain, then re-create under the same name: the new object is another KMSKey (another uid).
    await create(ns, 'reborn', { purpose: 'etcd' });
    const first = await settled(ns, 'reborn');
    expect(readyOf(first)?.status).toBe('True');
    await kube.delete(kkey(ns, 'reborn'));
    await waitFor('reborn released', async () => (await get(ns, 'reborn')) === null);
    await create(ns, 'reborn', { purpose: 'etcd' });
    const second = await waitFor(
      'the re-created KMSKey refused',
      async () => {
        const k = await get(ns, 'reborn');
        return k?.metadata?.uid !== first.metadata?.uid && readyOf(k)?.reason === 'TransitKeyOwnedElsewhere'
          ? k
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(readyOf(second)).toMatchObject({
      status: 'False',
      message: expect.stringMatching(new RegExp(`uid ${first.metadata!.uid}`)),
    });

    // Handing the retained key over is a platform admin's act, with an OpenBao token of their own.
    const dir = join(platform().dir, unique('attack01-cli'));
    mkdirSync(dir, { recursive: true });
    const env = kdcEnv(platform(), dir);
    const dry = await startKdc(['keys', 'adopt', 'reborn', '-n', ns, '--transit-key', `${ns}.reborn`], env).done;
    expect(dry).toMatchObject({ code: 0, stdout: expect.stringMatching(/dry run: nothing written/) });
    expect(readyOf(await get(ns, 'reborn'))?.reason).toBe('TransitKeyOwnedElsewhere');
    const done = await startKdc(
      ['keys', 'adopt', 'reborn', '-n', ns, '--transit-key', `${ns}.reborn`, '--confirm'],
      env,
    ).done;
    expect(done, done.stderr).toMatchObject({ code: 0 });
    const adopted = await waitFor(
      'the re-created KMSKey uses the handed-over key',
      async () => {
        const k = await get(ns, 'reborn');
        return readyOf(k)?.status === 'True' ? k! : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(transitOf(adopted)).toBe(`${ns}.reborn`);
    // Without an OpenBao token of the platform (a tenant has none), the same command changes nothing.
    const tenant = await startKdc(
      ['keys', 'adopt', 'planted', '-n', ns, '--transit-key', `${ns}.planted`, '--confirm'],
      { ...env, OPENBAO_TOKEN: 'not-a-token' },
    ).done;
    expect(tenant.code).toBe(1);
    expect(readyOf(await get(ns, 'planted'))?.reason).toBe('TransitKeyNotOwned');
  }, 240_000);

  it('migration: a key of the first naming scheme stays with the KMSKey it was created for; the colliding neighbour gets a new one', async () => {
    const owner = unique('legacy');
    const neighbour = `${owner}-x`;
    for (const name of [owner, neighbour])
      await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    // The KMSKey exists first (here held back by an invalid spec), then "the old controller" creates
    // its key under the old name `<ns>-<kmskey>`, which the neighbour's x-y also maps to.
    await create(owner, 'x-y', { purpose: 'etcd', exportable: true });
    await waitFor('held back', async () => readyOf(await get(owner, 'x-y'))?.reason === 'ExportableNotAllowed', {
      timeoutMs: 60_000,
    });
    await sleep(1100);
    await bao.createKey(`${owner}-x-y`);
    const ciphertext = await openBaoRoot()
      .transit()
      .encrypt(`${owner}-x-y`, Buffer.from('a row written before the upgrade'));
    await sleep(1100);
    await create(neighbour, 'y', { purpose: 'etcd' });
    await kube.patch(kkey(owner, 'x-y'), { spec: { exportable: false } });

    const migrated = await waitFor(
      'the owner keeps its legacy key',
      async () => {
        const k = await get(owner, 'x-y');
        return readyOf(k)?.status === 'True' ? k! : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(transitOf(migrated)).toBe(`${owner}-x-y`);
    expect((await openBaoRoot().transit().decrypt(`${owner}-x-y`, ciphertext.ciphertext)).toString()).toBe(
      'a row written before the upgrade',
    );
    expect(await bao.readKey(`${owner}.x-y`)).toBeNull();
    // The neighbour, whose y mapped to the same legacy name, gets a key of its own.
    const theirs = await settled(neighbour, 'y');
    expect(readyOf(theirs)?.status).toBe('True');
    expect(transitOf(theirs)).toBe(`${neighbour}.y`);
    const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, owner),
    );
    expect(events.items.some((e) => e.reason === 'LegacyKeyMigrated' && e.involvedObject.name === 'x-y')).toBe(true);
  }, 240_000);
});
