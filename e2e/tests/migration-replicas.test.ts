import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames, type KdcClusterStatus, type KubeClient, type KubeObject, at, RESOURCES } from '@kdc/shared';
import type { KamajiRunner } from '../src/kamaji-runner.ts';
import { startLifecycleTenant, writeSecrets, type LifecycleTenant } from '../src/lifecycle-tenant.ts';
import { rawRows, readLedger, tenantPrefix } from '../src/tenant-rows.ts';
import { waitFor } from '../src/wait.ts';
import { condition, createNamespace, kdc, management, platform, shardControllers, unique } from './helpers.ts';

// Issue 12, test 8: a tenant with 2 apiserver replicas. Kamaji rolls them one at a time, so old
// and new pods serve side by side; a row re-written through an old pod would stay plaintext. The
// local runner rolls like Kamaji's Deployment and can hold an old pod back: while it is held,
// k8-manager must not start the migration (it names the pod it waits for), no row changes in
// etcd; once the hold is lifted (the positive control) the same cluster migrates every row.

const SECRETS = 60;
type Cluster = KubeObject & {
  status?: KdcClusterStatus & { conditions?: { type: string; status: string; reason: string; message: string }[] };
};

describe('a migration waits for every replica: 2 apiserver replicas, one held back', () => {
  const kube = management();
  const id = unique('rep');
  const cluster = 'shop';
  const names = clusterNames(cluster);
  let stage: LifecycleTenant;
  let ns: string;
  let runner: KamajiRunner;
  let tenant: KubeClient;
  let etcdctl: (...args: string[]) => Promise<string>;
  let prefix: string;
  let ledger: Map<string, string>;
  const ours = (name: string) => name.startsWith('s-');
  const get = () => kube.get<Cluster>(kdc(ns, cluster));

  beforeAll(async () => {
    ns = await createNamespace(kube, 'rep');
    stage = await startLifecycleTenant({
      state: platform(),
      kube,
      id,
      namespace: ns,
      cluster,
      spec: { version: 'v1.35.0', controlPlane: { replicas: 2 } },
      controllers: () => shardControllers(id, { OBSERVE_PERIOD: '3s', MIGRATION_RATE: '1000' }),
    });
    ({ runner, tenant, etcdctl } = stage);
    await waitFor(
      'two ready replicas',
      async () =>
        runner.pods(ns, names.tenantControlPlane).filter((pod) => pod.ready).length === 2 ? true : undefined,
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    await writeSecrets(tenant, SECRETS, (i) => `replica-${i}`);
    ledger = await readLedger(tenant, 'secrets', ours);
    prefix = await tenantPrefix(kube, ns, names.tenantControlPlane);
  }, 600_000);

  afterAll(async () => {
    await stage?.stop();
  });

  it('enable with an old replica held back: nothing is re-written until every replica runs the new config', async () => {
    const before = runner.pods(ns, names.tenantControlPlane);
    expect(before.map((pod) => pod.ready)).toEqual([true, true]);
    const oldHash = before[0]!.hash;
    runner.holdBack(ns, names.tenantControlPlane, 1);
    await kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd: { enabled: true } } } });

    // The rollout reaches its held state: both new replicas ready (their plugins too), one old pod beside them.
    const held = await waitFor(
      'two new replicas ready, one old one held back',
      async () => {
        const pods = runner.pods(ns, names.tenantControlPlane);
        const fresh = pods.filter((pod) => pod.hash !== oldHash && pod.ready);
        return fresh.length === 2 && pods.length === 3 ? pods : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500 },
    );
    const oldPod = held.find((pod) => pod.hash === oldHash)!.podName;
    // k8-manager looked at every replica and waits for the held one, by name.
    const waiting = await waitFor(
      'k8-manager naming the replica it waits for',
      async () => {
        const c = await get();
        const message = condition(c, 'Encrypted')?.message ?? '';
        return message.includes(
          `2 of 3 control-plane replicas run the current encryption config (waiting for ${oldPod})`,
        )
          ? c
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(condition(waiting, 'Encrypted')).toMatchObject({ status: 'False', reason: 'EncryptionInProgress' });
    // Nothing happened meanwhile: no migration record, no event, every pre-existing row still plaintext.
    const seen = await get();
    expect(seen.status?.encryption?.migration).toBeUndefined();
    expect(seen.status?.encryption?.coverage).toBeUndefined();
    const raw = await rawRows(etcdctl, prefix, 'secrets');
    const ourRows = JSON.parse(
      await etcdctl('get', '--prefix', `${prefix}secrets/default/s-`, '--keys-only', '-w', 'json'),
    ) as { count?: number };
    expect(ourRows.count).toBe(SECRETS);
    expect(raw.plaintext).toBeGreaterThanOrEqual(SECRETS);
    const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, ns),
    );
    expect(events.items.filter((e) => e.involvedObject.name === cluster).map((e) => e.reason)).not.toContain(
      'MigrationStarted',
    );

    // Positive control: lift the hold, the old pod leaves, and the same cluster migrates every row.
    const lifted = new Date().toISOString();
    runner.holdBack(ns, names.tenantControlPlane, 0);
    const done = await waitFor(
      'EncryptionCompleted once every replica runs the new config',
      async () => {
        const c = await get();
        const scanned = c.status?.encryption?.coverage?.scannedAt;
        return condition(c, 'Encrypted')?.reason === 'EncryptionCompleted' &&
          scanned &&
          Date.parse(scanned) >= Date.parse(lifted) - 1000
          ? c
          : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    expect(runner.pods(ns, names.tenantControlPlane).map((pod) => pod.hash !== oldHash)).toEqual([true, true]);
    expect(done.status!.encryption!.coverage).toMatchObject({ plaintext: 0, stale: 0 });
    expect((await rawRows(etcdctl, prefix, 'secrets')).plaintext).toBe(0);
    const after = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, ns),
    );
    expect(after.items.filter((e) => e.involvedObject.name === cluster).map((e) => e.reason)).toContain(
      'MigrationStarted',
    );
    expect(await readLedger(tenant, 'secrets', ours)).toEqual(ledger);
  }, 600_000);
});
