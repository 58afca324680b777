// How a TenantControlPlane's control-plane pods follow its template, as one pure "next single
// change" per call (controllers/deployments.ts rolls Deployments with it too). Kamaji runs the control plane
// as a Deployment; with several replicas it rolls them one at a time (a new pod first, an old one
// leaves once the new one is ready), so old and new pods serve side by side for a while. That
// window is what k8-manager must wait out before it re-writes rows, and a test can widen it at
// will: `holdBack` keeps that many old pods running beside the new ones until it is lifted. One replica is replaced
// as before (the old pod stops, then the new one starts), which every single-replica test expects.

export interface ReplicaView {
  hash: string;
  phase: string;
  ready: boolean;
}

export type RolloutStep =
  | { kind: 'start'; count: number }
  /** Stop the replica at this index (in start order). */
  | { kind: 'stop'; index: number; why: 'failed' | 'replaced' | 'surplus' }
  | { kind: 'none' };

export function nextRolloutStep(input: {
  want: number;
  hash: string;
  replicas: readonly ReplicaView[];
  holdBack?: number;
}): RolloutStep {
  const { want, hash, replicas } = input;
  const holdBack = input.holdBack ?? 0;
  const failed = replicas.findIndex((r) => r.phase === 'Failed');
  if (failed >= 0) return { kind: 'stop', index: failed, why: 'failed' };
  const current = replicas.map((r, index) => ({ ...r, index })).filter((r) => r.hash === hash);
  const old = replicas.map((r, index) => ({ ...r, index })).filter((r) => r.hash !== hash);
  if (want <= 1 && holdBack === 0) {
    if (old.length) return { kind: 'stop', index: old[0]!.index, why: 'replaced' };
    if (current.length > 1) return { kind: 'stop', index: current[current.length - 1]!.index, why: 'surplus' };
    return current.length ? { kind: 'none' } : { kind: 'start', count: 1 };
  }
  if (current.length > want) return { kind: 'stop', index: current[current.length - 1]!.index, why: 'surplus' };
  if (!old.length) return current.length < want ? { kind: 'start', count: want - current.length } : { kind: 'none' };
  const readyCurrent = current.filter((r) => r.ready).length;
  // A new pod is ready beyond what is wanted: the oldest old one leaves (maxUnavailable 0).
  if (old.length > holdBack && readyCurrent + old.length > want)
    return { kind: 'stop', index: old[0]!.index, why: 'replaced' };
  // One new pod at a time (maxSurge 1, plus the pods held back), once the ones started before are ready.
  if (current.length < want && replicas.length < want + Math.max(1, holdBack) && current.every((r) => r.ready))
    return { kind: 'start', count: 1 };
  return { kind: 'none' };
}
