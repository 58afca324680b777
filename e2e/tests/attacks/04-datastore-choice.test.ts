import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATEFULSET } from '../../src/kamaji-statefulsets.ts';
import { conditionOf, restoreState, startRestoreFixture, type RestoreFixture } from '../../src/restore-fixture.ts';
import { waitFor } from '../../src/wait.ts';
import { platform, shardControllers, unique } from '../helpers.ts';

// Finding 4 (restore part): a DataStore a neighbour may point at can lose its etcd StatefulSet
// (or stop being this tenant's) in the middle of a restore. The state machine used to scale a
// StatefulSet it no longer had, PATCHing the StatefulSet collection URL on every retry, with the
// tenant left at 0 replicas. It must never act on a missing object: a clear Failed reason instead.

describe('attack 04 (restore): the etcd StatefulSet disappears in the middle of a restore', () => {
  let f: RestoreFixture;
  let backup: string;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), { id: unique('a04r'), prefix: 'tenant', controllers: (id, env) => shardControllers(id, env) });
    backup = await f.backupNow();
  }, 420_000);
  afterAll(async () => {
    await f?.stop();
  });

  it('ends Failed naming the missing StatefulSet, without ever patching what is not there', async () => {
    await f.requestRestore(backup);
    // The tenant is stopped and the restore Job runs: now the StatefulSet goes away.
    await waitFor('RestoringSnapshot', async () => restoreState(await f.get()) === 'RestoringSnapshot', { timeoutMs: 120_000, intervalMs: 100 });
    await f.kube.delete(STATEFULSET(f.ns, f.sts));

    const ended = await waitFor('the restore to end', async () => {
      const c = await f.get();
      const ready = conditionOf(c, 'RestoreReady');
      return ready && ready.reason !== 'RestoreInProgress' ? c : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250 }).catch(async (error: Error) => {
      const c = await f.get();
      throw new Error(`${error.message}; state ${restoreState(c)}, RestoreReady ${JSON.stringify(conditionOf(c, 'RestoreReady'))}`);
    });
    expect(restoreState(ended)).toBe('Failed');
    expect(conditionOf(ended, 'RestoreReady')).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: expect.stringMatching(new RegExp(`\\(EtcdStatefulSetMissing\\): .*StatefulSet ${f.sts}`)),
    });
    // Nothing was written to a StatefulSet collection: the apiserver would have refused it.
    const log = readFileSync(join(platform().logDir, `k8m-${f.id}.log`), 'utf8');
    const refused = log.split('\n').filter((l) => l.includes(`${f.ns}/${f.cluster}`) && / 405 |does not allow this method|MethodNotAllowed/.test(l));
    expect(refused).toEqual([]);
  }, 300_000);
});
