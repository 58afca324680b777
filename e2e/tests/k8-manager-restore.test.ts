import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATIONS, type KubeClient, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { kdcEnv, runKdc } from '../src/cli-harness.ts';
import { CRONJOB } from '../src/controllers/jobs.ts';
import { STATEFULSET } from '../src/controllers/statefulsets.ts';
import { restoreState, startRestoreFixture, TCP, type RestoreFixture } from '../src/restore-fixture.ts';
import { waitFor } from '../src/wait.ts';
import { condition, platform, shardControllers, unique } from './helpers.ts';

describe('k8-manager: kube-dc.com/restore-from stops the tenant, restores its etcd from an envelope backup, and starts it', () => {
  let f: RestoreFixture;
  const stateEvents = async (key: string) => {
    const events = await f.kube.list<KubeObject & { reason: string; message: string; firstTimestamp?: string }>(
      at(RESOURCES.event, f.ns),
      { fieldSelector: `involvedObject.name=${f.cluster}` },
    );
    return events.items
      .filter((e) => e.reason.startsWith('Restore') && e.message.startsWith(`restore from "${key}": `))
      .map((e) => e.message.slice(`restore from "${key}": `.length).split(' ')[0]!)
      .sort();
  };
  const cronJobEvents = async () =>
    (
      await f.kube.list<KubeObject & { reason: string }>(at(RESOURCES.event, f.ns), {
        fieldSelector: `involvedObject.name=${f.cluster}`,
      })
    ).items
      .map((e) => e.reason)
      .filter((r) => r.startsWith('BackupCronJob'));
  const secretValue = async (t: KubeClient, name: string) => {
    const s = await t.getOrNull<KubeObject & { data?: Record<string, string> }>(at(RESOURCES.secret, 'default', name));
    return s ? Buffer.from(s.data!.v!, 'base64').toString() : null;
  };
  const ORDER = [
    'Validating',
    'DrainingControlPlane',
    'StoppingEtcd',
    'RestoringSnapshot',
    'StartingEtcd',
    'StartingControlPlane',
    'Succeeded',
  ];

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), {
      id: unique('rs'),
      prefix: 'tenant-rs',
      controllers: (id, env) => shardControllers(id, env),
    });
  }, 300_000);
  afterAll(async () => {
    await f?.stop();
  });

  it('refuses a backup of another cluster at Validating and touches nothing', async () => {
    await f.requestRestore('other/other-20260101T000000Z/');
    const c = await f.waitEnd([], 60_000);
    // The controller's record, and the annotation that shows it.
    expect(c.status?.restore).toMatchObject({
      key: 'other/other-20260101T000000Z/',
      state: 'Failed',
      failure: expect.stringMatching(/^ForeignKey: /),
    });
    expect(c.metadata?.annotations?.[ANNOTATIONS.restoreState]).toBe('Failed');
    expect(await stateEvents('other/other-20260101T000000Z/')).toEqual(['Failed', 'Validating']);
    expect(condition(c, 'RestoreReady')).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: `Restore from "other/other-20260101T000000Z/" failed (ForeignKey): "other/other-20260101T000000Z/" is a backup of cluster other, not of ${f.cluster}`,
    });
    const tcp = await f.kube.get<KubeObject & { spec: { controlPlane: { deployment?: { replicas?: number } } } }>(
      TCP(f.ns, f.names.tenantControlPlane),
    );
    expect(tcp.spec.controlPlane.deployment?.replicas).toBe(1);
    expect(
      (await f.kube.get<KubeObject & { spec: { replicas: number } }>(STATEFULSET(f.ns, f.sts))).spec.replicas,
    ).toBe(1);
  }, 120_000);

  it('brings back the rows of the backup: deleted Secrets return, later ones go, changed ones revert', async () => {
    const t = await f.tenant();
    for (let i = 0; i < 20; i++)
      await t.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `s-${i}` },
        stringData: { v: `before-${i}` },
      });
    const backedUp = await f.backupNow();

    // What happens after the backup, and must be undone.
    for (let i = 0; i < 10; i++) await t.delete(at(RESOURCES.secret, 'default', `s-${i}`));
    await t.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'after-backup' },
      stringData: { v: 'new' },
    });
    await t.patch(at(RESOURCES.secret, 'default', 's-10'), { stringData: { v: 'changed' } }, 'merge');
    expect(await secretValue(t, 's-10')).toBe('changed');

    const started = Date.now();
    await f.requestRestore(backedUp);
    const seen: string[] = [];
    const c = await f.waitEnd(seen);
    const seconds = (Date.now() - started) / 1000;
    console.log(JSON.stringify({ restoreSeconds: seconds, polled: seen }));
    // Every state announced once by an event; the polls saw them in this order.
    expect(await stateEvents(backedUp)).toEqual([...ORDER].sort());
    expect(seen).toEqual(ORDER.filter((s) => seen.includes(s)));
    expect(seen.at(-1)).toBe('Succeeded');
    expect(condition(c, 'RestoreReady')).toMatchObject({
      status: 'True',
      reason: 'Succeeded',
      message: `Restore from "${backedUp}" complete`,
    });
    expect(c.status?.latestRestoreKey).toBe(backedUp);
    expect(restoreState(c)).toBe('Succeeded');
    expect(c.metadata?.annotations?.[ANNOTATIONS.restoreState]).toBe('Succeeded');

    await waitFor('cluster Ready again', async () => condition(await f.get(), 'Ready')?.status === 'True', {
      timeoutMs: 120_000,
      intervalMs: 1000,
    });
    // The backup CronJob was suspended for the restore (no snapshot of an etcd being replaced) and runs again.
    await waitFor(
      'backup CronJob resumed',
      async () =>
        (await f.kube.get<KubeObject & { spec: { suspend?: boolean } }>(CRONJOB(f.ns, f.names.backupCronJob))).spec
          .suspend !== true,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(await cronJobEvents()).toEqual(expect.arrayContaining(['BackupCronJobUpdated']));
    const after = await f.tenant();
    const values = await waitFor(
      'tenant API answers',
      async () => Promise.all(Array.from({ length: 20 }, (_, i) => secretValue(after, `s-${i}`))),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => `before-${i}`));
    expect(await secretValue(after, 'after-backup')).toBeNull();
    // What an operator sees.
    const shown = await runKdc(['status', f.cluster, '-n', f.ns], kdcEnv(platform(), join(platform().dir, f.id)));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`Restored:    ${backedUp} at `);
    expect(shown.stdout).toMatch(/RestoreReady\s+True\s+Succeeded/);
    // The data dir etcd ran on before the restore is kept beside the restored one.
    expect(existsSync(join(f.runner.claimPath(f.ns, `data-${f.sts}-0`), 'data.pre-restore', 'member'))).toBe(true);
  }, 420_000);
});
