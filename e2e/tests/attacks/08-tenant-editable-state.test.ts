import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '@kdc/shared';
import { JOB } from '../../src/kamaji-jobs.ts';
import { STATEFULSET } from '../../src/kamaji-statefulsets.ts';
import { conditionOf, restoreState, startRestoreFixture, TCP, type RestoreFixture } from '../../src/restore-fixture.ts';
import { sleep } from '../../src/wait.ts';
import { platform, shardControllers, unique } from '../helpers.ts';

// Finding 8 (restore part): kube-dc.com/restore-state and restore-state-since are annotations the
// tenant writes. The restore state machine trusted them, so a tenant could start a restore in
// RestoringSnapshot: the restore Job ran with a key Validating never saw (a foreign, missing or
// plaintext backup), without draining the control plane or stopping etcd. The controller's state
// must live where the tenant cannot write (status); the annotations only show it.

describe('attack 08 (restore): a tenant writes the restore state annotations', () => {
  let f: RestoreFixture;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), { id: unique('a08r'), prefix: 'tenant', controllers: (id, env) => shardControllers(id, env) });
  }, 420_000);
  afterAll(async () => {
    await f?.stop();
  });

  it('a request that claims to be past Validating is validated from scratch, and nothing is touched', async () => {
    const missing = `${f.cluster}/${f.cluster}-20200101T000000Z/`;
    const long = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await f.requestRestore(missing, { [ANNOTATIONS.restoreState]: 'RestoringSnapshot', [ANNOTATIONS.restoreStateSince]: long });

    // Watch for the restore Job and the states shown until the restore has ended.
    const seen: string[] = [];
    let job = false;
    const deadline = Date.now() + 120_000;
    let ended;
    while (Date.now() < deadline) {
      job ||= (await f.kube.getOrNull(JOB(f.ns, f.names.restoreJob))) !== null;
      const c = await f.get();
      const state = restoreState(c);
      if (state && seen.at(-1) !== state) seen.push(state);
      const ready = conditionOf(c, 'RestoreReady');
      if ((state === 'Failed' || state === 'Succeeded') && ready && ready.reason !== 'RestoreInProgress') {
        ended = c;
        break;
      }
      await sleep(100);
    }
    expect(job, `a restore Job ran for a key nobody validated (states shown: ${seen.join(' -> ')})`).toBe(false);
    expect(ended, `the restore did not end (states shown: ${seen.join(' -> ')})`).toBeDefined();
    expect(restoreState(ended!)).toBe('Failed');
    expect(conditionOf(ended, 'RestoreReady')).toMatchObject({ status: 'False', reason: 'Failed', message: expect.stringContaining('(BackupNotFound)') });
    expect(seen.filter((s) => ['DrainingControlPlane', 'StoppingEtcd', 'StartingEtcd', 'StartingControlPlane'].includes(s))).toEqual([]);
    // The annotation shows the controller's state, not the tenant's.
    expect(ended!.metadata?.annotations?.[ANNOTATIONS.restoreState]).toBe('Failed');
    const tcp = await f.kube.get<{ spec: { controlPlane: { deployment?: { replicas?: number } } } }>(TCP(f.ns, f.names.tenantControlPlane));
    expect(tcp.spec.controlPlane.deployment?.replicas).toBe(1);
    expect((await f.kube.get<{ spec: { replicas: number } }>(STATEFULSET(f.ns, f.sts))).spec.replicas).toBe(1);
  }, 240_000);
});
