import { describe, expect, it } from 'vitest';
import { planRestore, restoreCondition, type ObservedRestore } from './plan.ts';

const layout = {
  ok: true as const,
  statefulSet: 'etcd',
  layout: { claimName: 'data-etcd-0', mountPath: '/var/lib/etcd', dataDir: '/var/lib/etcd/data' },
};
const base: ObservedRestore = {
  requestedKey: 'prod/prod-20261122T020000Z/',
  desiredReplicas: 2,
  tcpReplicas: 2,
  tcpReadyReplicas: 2,
  tcpReady: true,
  restoreJob: null,
  backup: { ok: true },
  etcd: { ...layout, specReplicas: 1, runningReplicas: 1, readyReplicas: 1 },
};
const o = (patch: Partial<ObservedRestore>): ObservedRestore => ({ ...base, ...patch });
const etcd = (specReplicas: number, runningReplicas: number, readyReplicas: number) => ({
  ...layout,
  specReplicas,
  runningReplicas,
  readyReplicas,
});

describe('planRestore: the next single change', () => {
  it.each<[string, ObservedRestore, unknown]>([
    ['nothing requested', o({ requestedKey: undefined }), { kind: 'idle' }],
    ['finished', o({ state: 'Succeeded' }), { kind: 'idle' }],
    ['failed stays failed', o({ state: 'Failed' }), { kind: 'idle' }],
    ['a new request starts validating', o({}), { kind: 'setState', state: 'Validating' }],
    [
      'an old restore Job goes first',
      o({ restoreJob: { name: 'prod-etcd-restore', result: 'Succeeded' } }),
      { kind: 'deleteRestoreJob' },
    ],
    ['valid -> drain', o({ state: 'Validating' }), { kind: 'setState', state: 'DrainingControlPlane' }],
    [
      'backup refused -> Failed, nothing touched',
      o({ state: 'Validating', backup: { ok: false, reason: 'ForeignKey', message: 'wrapped by another key' } }),
      { kind: 'setState', state: 'Failed', failure: 'ForeignKey: wrapped by another key' },
    ],
    [
      'multi-member etcd -> Failed',
      o({
        state: 'Validating',
        etcd: {
          ok: false,
          reason: 'MultiReplicaUnsupported',
          message: '3 members',
          statefulSet: 'etcd',
          specReplicas: 3,
          runningReplicas: 3,
          readyReplicas: 3,
        },
      }),
      { kind: 'setState', state: 'Failed', failure: 'MultiReplicaUnsupported: 3 members' },
    ],
    ['drain: scale the TCP to 0', o({ state: 'DrainingControlPlane' }), { kind: 'scaleControlPlane', replicas: 0 }],
    [
      'drain: wait for the pods',
      o({ state: 'DrainingControlPlane', tcpReplicas: 0, tcpReadyReplicas: 1 }),
      { kind: 'wait', message: expect.stringContaining('control plane') },
    ],
    [
      'drained -> stop etcd',
      o({ state: 'DrainingControlPlane', tcpReplicas: 0, tcpReadyReplicas: 0 }),
      { kind: 'setState', state: 'StoppingEtcd' },
    ],
    ['stop: scale etcd to 0', o({ state: 'StoppingEtcd', etcd: etcd(1, 1, 1) }), { kind: 'scaleEtcd', replicas: 0 }],
    [
      'stop: wait for the member to exit',
      o({ state: 'StoppingEtcd', etcd: etcd(0, 1, 0) }),
      { kind: 'wait', message: expect.stringContaining('etcd') },
    ],
    [
      'stopped -> restore',
      o({ state: 'StoppingEtcd', etcd: etcd(0, 0, 0) }),
      { kind: 'setState', state: 'RestoringSnapshot' },
    ],
    ['restore: create the Job', o({ state: 'RestoringSnapshot', etcd: etcd(0, 0, 0) }), { kind: 'createRestoreJob' }],
    [
      'restore: wait for it',
      o({ state: 'RestoringSnapshot', restoreJob: { name: 'j' } }),
      { kind: 'wait', message: 'restore Job j is running' },
    ],
    [
      'restored -> start etcd',
      o({ state: 'RestoringSnapshot', restoreJob: { name: 'j', result: 'Succeeded' } }),
      { kind: 'setState', state: 'StartingEtcd' },
    ],
    [
      'restore failed -> bring the tenant back first',
      o({ state: 'RestoringSnapshot', restoreJob: { name: 'j', result: 'Failed', reason: 'BackoffLimitExceeded' } }),
      {
        kind: 'setState',
        state: 'StartingEtcd',
        failure: expect.stringMatching(
          /^RestoreJobFailed: Job j failed \(BackoffLimitExceeded\); etcd keeps its previous data/,
        ),
      },
    ],
    ['start etcd', o({ state: 'StartingEtcd', etcd: etcd(0, 0, 0) }), { kind: 'scaleEtcd', replicas: 1 }],
    [
      'wait for etcd',
      o({ state: 'StartingEtcd', etcd: etcd(1, 1, 0) }),
      { kind: 'wait', message: 'waiting for etcd to be ready' },
    ],
    [
      'etcd ready -> start the control plane',
      o({ state: 'StartingEtcd', etcd: etcd(1, 1, 1) }),
      { kind: 'setState', state: 'StartingControlPlane' },
    ],
    [
      'scale the TCP back to the spec',
      o({ state: 'StartingControlPlane', tcpReplicas: 0, tcpReadyReplicas: 0, tcpReady: false }),
      { kind: 'scaleControlPlane', replicas: 2 },
    ],
    [
      'wait for Ready',
      o({ state: 'StartingControlPlane', tcpReady: false }),
      { kind: 'wait', message: expect.stringContaining('Ready') },
    ],
    ['Ready -> Succeeded', o({ state: 'StartingControlPlane' }), { kind: 'setState', state: 'Succeeded' }],
    [
      'etcd never comes back -> Failed',
      o({ state: 'StartingEtcd', etcd: etcd(1, 1, 0), stateAgeMs: 10 * 60_000 + 1 }),
      { kind: 'setState', state: 'Failed', failure: expect.stringMatching(/^EtcdStartFailed: .*pre-restore/) },
    ],
    [
      'the control plane never comes back -> Failed',
      o({ state: 'StartingControlPlane', tcpReady: false, stateAgeMs: 10 * 60_000 + 1 }),
      { kind: 'setState', state: 'Failed', failure: expect.stringMatching(/^ControlPlaneStartFailed: /) },
    ],
    [
      'slow but within the limit: wait',
      o({ state: 'StartingControlPlane', tcpReady: false, stateAgeMs: 9 * 60_000 }),
      { kind: 'wait', message: expect.any(String) },
    ],
    [
      'Ready after a failure -> Failed',
      o({ state: 'StartingControlPlane', failure: 'RestoreJobFailed: x' }),
      { kind: 'setState', state: 'Failed' },
    ],
  ])('%s', (_, observed, expected) => {
    expect(planRestore(observed)).toEqual(expected);
  });
});

describe('planRestore: never acts on an etcd StatefulSet that is not there (finding 4)', () => {
  const gone = {
    ok: false as const,
    reason: 'DataStoreUnmanaged',
    message: 'StatefulSet etcd (from DataStore ds) does not exist',
    statefulSet: null,
    missing: 'StatefulSet etcd (from DataStore ds) does not exist',
    specReplicas: 0,
    runningReplicas: 0,
    readyReplicas: 0,
  };
  const failed = {
    kind: 'setState',
    state: 'Failed',
    failure: expect.stringMatching(
      /^EtcdStatefulSetMissing: StatefulSet etcd \(from DataStore ds\) does not exist; the control plane stays at 0 replicas: recreate the StatefulSet, then request the restore again \(or scale TenantControlPlane back to 2\)/,
    ),
  };
  it.each<[string, ObservedRestore, unknown]>([
    ['while stopping etcd', o({ state: 'StoppingEtcd', tcpReplicas: 0, etcd: gone }), failed],
    ['before the restore Job', o({ state: 'RestoringSnapshot', tcpReplicas: 0, etcd: gone }), failed],
    [
      'while the restore Job runs: wait for it',
      o({ state: 'RestoringSnapshot', tcpReplicas: 0, etcd: gone, restoreJob: { name: 'j' } }),
      { kind: 'wait', message: 'restore Job j is running' },
    ],
    ['while starting etcd', o({ state: 'StartingEtcd', tcpReplicas: 0, etcd: gone }), failed],
    [
      'after an earlier failure, both are said',
      o({ state: 'StartingEtcd', tcpReplicas: 0, etcd: gone, failure: 'RestoreJobFailed: x' }),
      { kind: 'setState', state: 'Failed', failure: expect.stringContaining('(before: RestoreJobFailed: x)') },
    ],
  ])('%s', (_, observed, expected) => {
    expect(planRestore(observed)).toEqual(expected);
  });
  it("a DataStore that stopped being this tenant's alone is not restored into: the tenant comes back on its old data", () => {
    const shared = {
      ok: false as const,
      reason: 'SharedDataStore',
      message: 'DataStore ds also serves evil/x-cp',
      statefulSet: 'etcd',
      specReplicas: 0,
      runningReplicas: 0,
      readyReplicas: 0,
    };
    expect(planRestore(o({ state: 'RestoringSnapshot', tcpReplicas: 0, etcd: shared }))).toEqual({
      kind: 'setState',
      state: 'StartingEtcd',
      failure: 'SharedDataStore: DataStore ds also serves evil/x-cp; etcd keeps its previous data',
    });
    expect(
      planRestore(o({ state: 'StartingEtcd', tcpReplicas: 0, etcd: shared, failure: 'SharedDataStore: x' })),
    ).toEqual({ kind: 'scaleEtcd', replicas: 1 });
  });
});

describe('restoreCondition', () => {
  const key = 'prod/prod-20261122T020000Z/';
  it.each([
    [undefined, undefined, undefined],
    ['Succeeded', undefined, { status: 'True', reason: 'Succeeded', message: `Restore from "${key}" complete` }],
    [
      'Failed',
      'ForeignKey: the backup is wrapped by acme-other-etcd',
      {
        status: 'False',
        reason: 'Failed',
        message: `Restore from "${key}" failed (ForeignKey): the backup is wrapped by acme-other-etcd`,
      },
    ],
    [
      'RestoringSnapshot',
      undefined,
      { status: 'False', reason: 'RestoreInProgress', message: `Restore from "${key}": RestoringSnapshot` },
    ],
  ] as const)('%s', (state, failure, expected) => {
    const condition = restoreCondition(key, state, failure);
    if (!state) expect(condition).toMatchObject({ reason: 'RestoreInProgress' });
    else expect(condition).toMatchObject({ type: 'RestoreReady', ...expected });
  });
  it('none without a request', () => expect(restoreCondition(undefined, undefined, undefined)).toBeUndefined());
});
