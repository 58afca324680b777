// A Pod's status as a kubelet reports it, from what the pod runtime knows. Pure.
import type { ContainerState } from './container.ts';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface PodStatusInput {
  phase: PodPhase;
  message?: string;
  containers: readonly ContainerState[];
  /** The sandbox is up (PodReadyToStartContainers). */
  sandboxReady: boolean;
  /** Every init container completed and every sidecar started. */
  initialized: boolean;
  podIP: string;
  startedAt: number;
  /** Computed by the apiserver at creation and immutable: echoed as admitted. */
  qosClass?: string;
  now?: Date;
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
}

export interface PodStatus {
  phase: PodPhase;
  message?: string;
  conditions: PodCondition[];
  [field: string]: unknown;
}

export function podStatus(input: PodStatusInput): PodStatus {
  const now = (input.now ?? new Date()).toISOString();
  const { phase } = input;
  const statusOf = (c: ContainerState) => {
    const state = c.running
      ? { running: { startedAt: c.startedAt } }
      : (c.kind === 'init' && c.lastExitCode === 0) ||
          (c.kind === 'container' && c.lastTerminated && (phase === 'Succeeded' || phase === 'Failed'))
        ? {
            terminated: {
              ...(c.lastTerminated ?? {
                exitCode: 0,
                reason: 'Completed',
                startedAt: c.startedAt,
                finishedAt: c.finishedAt,
              }),
              containerID: `local://${c.pid}`,
            },
          }
        : {
            waiting: {
              reason: c.reason ?? (input.sandboxReady ? 'PodInitializing' : 'ContainerCreating'),
              ...(c.message ? { message: c.message } : {}),
            },
          };
    return {
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: '',
      ...(c.pid ? { containerID: `local://${c.pid}` } : {}),
      ready: c.ready,
      started: c.started,
      restartCount: c.restartCount,
      state,
      lastState:
        c.lastTerminated && !(c.kind === 'init' && c.lastExitCode === 0 && !c.running)
          ? { terminated: { ...c.lastTerminated, containerID: `local://${c.pid}` } }
          : {},
    };
  };
  const init = input.containers.filter((c) => c.kind !== 'container');
  const main = input.containers.filter((c) => c.kind === 'container');
  const containersReady = input.initialized && input.containers.every((c) => c.kind === 'init' || c.ready);
  const condition = (type: string, ok: boolean, reason?: string): PodCondition => ({
    type,
    status: ok ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: now,
    ...(ok || !reason ? {} : { reason }),
  });
  return {
    phase,
    ...(input.message ? { message: input.message } : {}),
    hostIP: '127.0.0.1',
    hostIPs: [{ ip: '127.0.0.1' }],
    podIP: input.podIP,
    podIPs: [{ ip: input.podIP }],
    startTime: new Date(input.startedAt).toISOString(),
    conditions: [
      condition('PodReadyToStartContainers', input.sandboxReady),
      condition('Initialized', input.initialized, 'ContainersNotInitialized'),
      condition('Ready', containersReady, 'ContainersNotReady'),
      condition('ContainersReady', containersReady, 'ContainersNotReady'),
      condition('PodScheduled', true),
    ],
    initContainerStatuses: init.map(statusOf),
    containerStatuses: main.map(statusOf),
    qosClass: input.qosClass,
  };
}

export type TransitionTimes = ReadonlyMap<string, { status: string; time: string }>;

/**
 * The status to write given the last one written: a condition keeps its lastTransitionTime while
 * its status stays, and `changed` is false when nothing but those times differs (no write).
 */
export function carryTransitions(
  status: PodStatus,
  previous: { comparable?: string; times: TransitionTimes },
): { status: PodStatus; comparable: string; times: TransitionTimes; changed: boolean } {
  const comparable = JSON.stringify({
    ...status,
    conditions: status.conditions.map((c) => ({ ...c, lastTransitionTime: undefined })),
  });
  if (comparable === previous.comparable) return { status, comparable, times: previous.times, changed: false };
  const times = new Map(previous.times);
  const conditions = status.conditions.map((c) => {
    const prev = times.get(c.type);
    if (prev && prev.status === c.status) return { ...c, lastTransitionTime: prev.time };
    times.set(c.type, { status: c.status, time: c.lastTransitionTime });
    return c;
  });
  return { status: { ...status, conditions }, comparable, times, changed: true };
}
