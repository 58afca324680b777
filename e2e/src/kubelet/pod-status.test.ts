import { describe, expect, it } from 'vitest';
import { ContainerState } from './container.ts';
import { carryTransitions, podStatus, type PodStatusInput } from './pod-status.ts';

const input = (over: Partial<PodStatusInput> = {}): PodStatusInput => ({
  phase: 'Running',
  containers: [],
  sandboxReady: true,
  initialized: true,
  podIP: '127.70.0.1',
  startedAt: 0,
  now: new Date(1000),
  ...over,
});

describe('pod status', () => {
  it('reports containers as the kubelet does: a completed init container terminated, a waiting one with its reason', () => {
    const init = new ContainerState({ name: 'init', image: 'i' }, 'init', '/dev/null');
    init.lastExitCode = 0;
    init.lastTerminated = { exitCode: 0, reason: 'Completed' };
    const main = new ContainerState({ name: 'main' }, 'container', '/dev/null');
    main.reason = 'CrashLoopBackOff';
    const status = podStatus(input({ containers: [init, main] }));
    expect(status.initContainerStatuses).toMatchObject([
      { name: 'init', image: 'i', state: { terminated: { exitCode: 0, reason: 'Completed' } }, lastState: {} },
    ]);
    expect(status.containerStatuses).toMatchObject([
      { name: 'main', ready: false, state: { waiting: { reason: 'CrashLoopBackOff' } } },
    ]);
    expect(status.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
    });
  });

  it('keeps a condition transition time while its status stays, and writes nothing when only times differ', () => {
    const first = carryTransitions(podStatus(input()), { times: new Map() });
    expect(first.changed).toBe(true);
    const again = carryTransitions(podStatus(input({ now: new Date(5000) })), {
      comparable: first.comparable,
      times: first.times,
    });
    expect(again.changed).toBe(false);
    const failed = carryTransitions(podStatus(input({ phase: 'Failed', initialized: false, now: new Date(9000) })), {
      comparable: first.comparable,
      times: first.times,
    });
    expect(failed.changed).toBe(true);
    const time = (type: string) => failed.status.conditions.find((c) => c.type === type)?.lastTransitionTime;
    expect(time('PodScheduled')).toBe(new Date(1000).toISOString());
    expect(time('Initialized')).toBe(new Date(9000).toISOString());
  });
});
