import { describe, expect, it } from 'vitest';
import { nextRolloutStep, type ReplicaView, type RolloutStep } from './rollout.ts';

const r = (hash: string, ready = true, phase = 'Running'): ReplicaView => ({ hash, ready, phase });

describe('nextRolloutStep', () => {
  it.each<[string, Parameters<typeof nextRolloutStep>[0], RolloutStep]>([
    ['one replica: nothing runs, start it', { want: 1, hash: 'h1', replicas: [] }, { kind: 'start', count: 1 }],
    [
      'one replica: new template, the old pod stops first',
      { want: 1, hash: 'h2', replicas: [r('h1')] },
      { kind: 'stop', index: 0, why: 'replaced' },
    ],
    ['one replica: steady', { want: 1, hash: 'h1', replicas: [r('h1')] }, { kind: 'none' }],
    [
      'a failed pod is replaced',
      { want: 2, hash: 'h1', replicas: [r('h1'), r('h1', false, 'Failed')] },
      { kind: 'stop', index: 1, why: 'failed' },
    ],
    ['two replicas from nothing: both at once', { want: 2, hash: 'h1', replicas: [] }, { kind: 'start', count: 2 }],
    [
      'scaled down: the newest goes',
      { want: 2, hash: 'h1', replicas: [r('h1'), r('h1'), r('h1')] },
      { kind: 'stop', index: 2, why: 'surplus' },
    ],
    ['rolling: one new pod first', { want: 2, hash: 'h2', replicas: [r('h1'), r('h1')] }, { kind: 'start', count: 1 }],
    [
      'rolling: nothing while the new pod is not ready',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h1'), r('h2', false)] },
      { kind: 'none' },
    ],
    [
      'rolling: the new pod is ready, the oldest leaves',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h1'), r('h2')] },
      { kind: 'stop', index: 0, why: 'replaced' },
    ],
    ['rolling: the second new pod', { want: 2, hash: 'h2', replicas: [r('h1'), r('h2')] }, { kind: 'start', count: 1 }],
    [
      'rolling: the last old pod leaves',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h2'), r('h2')] },
      { kind: 'stop', index: 0, why: 'replaced' },
    ],
    [
      'held back: the second new pod starts, the old one stays',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h2')], holdBack: 1 },
      { kind: 'start', count: 1 },
    ],
    [
      'held back: every new pod runs and one old pod beside them',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h2'), r('h2')], holdBack: 1 },
      { kind: 'none' },
    ],
    [
      'held back lifted: the old pod leaves',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h2'), r('h2')] },
      { kind: 'stop', index: 0, why: 'replaced' },
    ],
    [
      'held back: the first old pod is still replaced',
      { want: 2, hash: 'h2', replicas: [r('h1'), r('h1'), r('h2')], holdBack: 1 },
      { kind: 'stop', index: 0, why: 'replaced' },
    ],
    [
      'held back, one replica: the old pod stays, the new one starts beside it',
      { want: 1, hash: 'h2', replicas: [r('h1')], holdBack: 1 },
      { kind: 'start', count: 1 },
    ],
    [
      'held back, one replica: both serve',
      { want: 1, hash: 'h2', replicas: [r('h1'), r('h2')], holdBack: 1 },
      { kind: 'none' },
    ],
  ])('%s', (_, input, step) => {
    expect(nextRolloutStep(input)).toEqual(step);
  });

  it('a rollout of two replicas ends with two new pods and never fewer than two ready', () => {
    let replicas: ReplicaView[] = [r('h1'), r('h1')];
    for (let i = 0; i < 10; i++) {
      const step = nextRolloutStep({ want: 2, hash: 'h2', replicas });
      if (step.kind === 'none') {
        replicas = replicas.map((x) => ({ ...x, ready: true }));
        continue;
      }
      if (step.kind === 'start') replicas = [...replicas, ...Array.from({ length: step.count }, () => r('h2', false))];
      else replicas = replicas.filter((_, index) => index !== step.index);
      expect(replicas.filter((x) => x.ready).length).toBeGreaterThanOrEqual(2);
    }
    expect(replicas).toEqual([r('h2'), r('h2')]);
  });
});
