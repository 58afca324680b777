// The Deployment controller of the local runner (our chart's two controllers run as
// Deployments). Pods come from spec.template as Pod objects on the API, so ServiceAccount
// admission mounts their token as it would in a cluster, and run on the local node. A template
// change rolls with the TCP rollout's rule (kamaji/rollout.ts: maxSurge 1, maxUnavailable 0); a
// failed pod is replaced. Status is what the Deployment controller writes and what `helm install
// --wait` (kstatus) reads: observedGeneration, replica counts, Available and Progressing. No
// ReplicaSet objects are made. A deleted Deployment's pods stop and their objects go (no garbage
// collector runs here).
import { createHash, randomBytes } from 'node:crypto';
import { at, rfc3339, RESOURCES, type KubeObject } from '@kdc/shared';
import { nextRolloutStep } from '../kamaji/rollout.ts';
import type { PodRuntime } from '../kubelet/pod.ts';
import { ownerKey, type PodTemplate } from '../kubelet/pod-spec.ts';
import { ownedPod } from './owned-pod.ts';
import { Watched, type ControllerContext } from './watch.ts';

export const DEPLOYMENT = (namespace?: string, name?: string) => at(RESOURCES.deployment, namespace, name);

export interface DeploymentObject extends KubeObject {
  metadata: KubeObject['metadata'] & { name: string; namespace: string; uid?: string; generation?: number };
  spec: {
    replicas?: number;
    template: PodTemplate;
  };
}

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
}

interface DeploymentState {
  replicas: { pod: PodRuntime; hash: string }[];
  conditions: Map<string, Condition>;
  lastStatus?: string;
}

/** The pod-template-hash: what names the pods of one template (the real one hashes the template too). */
export const podTemplateHash = (template: PodTemplate) =>
  createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);

/** A condition that keeps its times while its status (and, for lastUpdateTime, its reason) stays. */
function condition(
  previous: Condition | undefined,
  type: string,
  status: 'True' | 'False',
  reason: string,
  message: string,
): Condition {
  const now = rfc3339(new Date());
  const same = previous?.status === status && previous.reason === reason;
  return {
    type,
    status,
    reason,
    message,
    lastUpdateTime: same ? previous.lastUpdateTime : now,
    lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
  };
}

export class DeploymentController {
  private readonly context: ControllerContext;
  private readonly watched: Watched<DeploymentObject>;
  private readonly deployments = new Map<string, DeploymentState>();

  constructor(context: ControllerContext) {
    this.context = context;
    this.watched = new Watched<DeploymentObject>(context, {
      name: 'deployment',
      resource: RESOURCES.deployment,
      reconcile: (key) => this.reconcile(key),
      backoff: { baseDelayMs: 1000, maxDelayMs: 1000 },
    });
    context.node.onPodChange((pod) => {
      const key = ownerKey(pod.pod, RESOURCES.deployment.kind);
      if (key && this.deployments.get(key)?.replicas.some((r) => r.pod === pod)) this.watched.controller.enqueue(key);
    });
  }

  start(): Promise<void> {
    return this.watched.start();
  }

  private log(message: string, fields: Record<string, unknown>): void {
    this.context.logger.info(fields, message);
  }

  /** The running pods of a Deployment, in start order (tests read their host ports and logs). */
  pods(namespace: string, name: string): PodRuntime[] {
    return this.deployments.get(`${namespace}/${name}`)?.replicas.map((r) => r.pod) ?? [];
  }

  private async reconcile(key: string): Promise<void> {
    const deployment = this.watched.get(key);
    let s = this.deployments.get(key);
    if (!s) {
      s = { replicas: [], conditions: new Map() };
      this.deployments.set(key, s);
    }
    if (!deployment || deployment.metadata.deletionTimestamp) {
      for (const r of [...s.replicas]) await this.stopPod(key, s, r);
      this.deployments.delete(key);
      return;
    }
    const want = deployment.spec.replicas ?? 1;
    const hash = podTemplateHash(deployment.spec.template);
    for (let i = 0; i < 2 * want + 4; i++) {
      if (want === 0) {
        for (const r of [...s.replicas]) await this.stopPod(key, s, r);
        break;
      }
      const step = nextRolloutStep({
        want,
        hash,
        replicas: s.replicas.map((r) => ({ hash: r.hash, phase: r.pod.phase, ready: r.pod.ready })),
      });
      if (step.kind === 'none') break;
      if (step.kind === 'stop') {
        const r = s.replicas[step.index]!;
        this.log(`deployment pod ${step.why}; stopping it`, {
          deployment: key,
          pod: r.pod.name,
          message: r.pod.podMessage,
        });
        await this.stopPod(key, s, r, step.why === 'failed' ? 2000 : undefined);
        continue;
      }
      for (let n = 0; n < step.count; n++) await this.startPod(key, s, deployment, hash);
      break;
    }
    await this.syncStatus(s, deployment, hash);
  }

  private async startPod(key: string, s: DeploymentState, deployment: DeploymentObject, hash: string): Promise<void> {
    const { node } = this.context;
    const suffix = randomBytes(3).toString('hex').slice(0, 5);
    const admitted = await node.createPod(
      ownedPod(RESOURCES.deployment, deployment, {
        name: `${deployment.metadata.name.slice(0, 40)}-${hash}-${suffix}`,
        labels: { 'pod-template-hash': hash },
      }),
    );
    s.replicas.push({ pod: node.run(admitted, { group: 'deployments' }), hash });
    this.log('deployment pod started', { deployment: key, pod: admitted.metadata.name, hash });
  }

  private async stopPod(key: string, s: DeploymentState, r: DeploymentState['replicas'][number], graceMs?: number) {
    s.replicas = s.replicas.filter((x) => x !== r);
    await this.context.node.stop(r.pod, { graceMs });
    this.log('deployment pod stopped', { deployment: key, pod: r.pod.name });
  }

  private async syncStatus(s: DeploymentState, deployment: DeploymentObject, hash: string): Promise<void> {
    const want = deployment.spec.replicas ?? 1;
    const updated = s.replicas.filter((r) => r.hash === hash);
    const ready = s.replicas.filter((r) => r.pod.ready).length;
    const name = `${deployment.metadata.name}-${hash}`;
    const rolledOut = updated.length === want && s.replicas.length === want && updated.every((r) => r.pod.ready);
    const set = (type: string, status: 'True' | 'False', reason: string, message: string) => {
      const c = condition(s.conditions.get(type), type, status, reason, message);
      s.conditions.set(type, c);
      return c;
    };
    const conditions = [
      ready >= want
        ? set('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
        : set('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.'),
      rolledOut
        ? set('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${name}" has successfully progressed.`)
        : set('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${name}" is progressing.`),
    ];
    const counts = {
      observedGeneration: deployment.metadata.generation ?? 0,
      replicas: s.replicas.length,
      updatedReplicas: updated.length,
      readyReplicas: ready,
      availableReplicas: ready,
      unavailableReplicas: Math.max(0, want - ready),
    };
    const text = JSON.stringify({ counts, conditions: conditions.map((c) => [c.type, c.status, c.reason]) });
    if (text === s.lastStatus) return;
    const ref = DEPLOYMENT(deployment.metadata.namespace, deployment.metadata.name);
    await this.context.kube.patch({ ...ref, subresource: 'status' }, { status: { ...counts, conditions } }, 'merge');
    s.lastStatus = text;
  }

  /** The pods stop (their objects stay, as on a node going down). */
  async stop(): Promise<void> {
    await this.watched.stop();
    await Promise.all(
      [...this.deployments.values()].flatMap((s) =>
        s.replicas.map((r) => this.context.node.stop(r.pod, { graceMs: 5000, object: 'keep' })),
      ),
    );
  }
}
