// The Deployment half of the local runner: what the Deployment controller and a kubelet would do
// for an apps/v1 Deployment (our chart's two controllers). Pods come from spec.template, run
// generically (kamaji-pod.ts) as Pod objects on the API, so ServiceAccount admission mounts their
// token as it would in a cluster. A template change rolls with the TCP rollout's rule
// (kamaji-rollout.ts: maxSurge 1, maxUnavailable 0); a failed pod is replaced. Status is what the
// Deployment controller writes and what `helm install --wait` (kstatus) reads: observedGeneration,
// replica counts, Available and Progressing. No ReplicaSet objects are made. A deleted Deployment's
// pods stop and their objects go (no garbage collector runs here).
import { createHash, randomBytes } from 'node:crypto';
import { isNotFound, rfc3339, type Informer, type KubeObject, type ResourceRef, at, RESOURCES } from '@kdc/shared';
import type { PodObject, PodRuntime } from './kamaji-pod.ts';
import { nextRolloutStep } from './kamaji-rollout.ts';
import { findIn, watchAll, type WorkloadRunnerDeps } from './kamaji-workloads.ts';

export const DEPLOYMENT = (namespace?: string, name?: string): ResourceRef => ({
  ...RESOURCES.deployment,
  namespace,
  name,
});

export interface DeploymentObject extends KubeObject {
  metadata: KubeObject['metadata'] & { name: string; namespace: string; uid?: string; generation?: number };
  spec: {
    replicas?: number;
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: PodObject['spec'];
    };
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
  key: string;
  replicas: { runtime: PodRuntime; hash: string }[];
  chain: Promise<void>;
  queued: boolean;
  conditions: Map<string, Condition>;
  lastStatus?: string;
}

/** The pod-template-hash: what names the pods of one template (the real one hashes the template too). */
export const podTemplateHash = (template: DeploymentObject['spec']['template']) =>
  createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 10);

export class LocalDeploymentRunner {
  private readonly deps: WorkloadRunnerDeps;
  private informers: Informer<DeploymentObject>[] = [];
  private readonly deployments = new Map<string, DeploymentState>();
  private stopping = false;

  constructor(deps: WorkloadRunnerDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.informers = await watchAll<DeploymentObject>(this.deps.kube, DEPLOYMENT, this.deps.namespaces, (d) =>
      this.enqueue(`${d.metadata.namespace}/${d.metadata.name}`),
    );
  }

  /** The running pods of a Deployment, in start order (tests read their host ports and logs). */
  pods(namespace: string, name: string): PodRuntime[] {
    return this.deployments.get(`${namespace}/${name}`)?.replicas.map((r) => r.runtime) ?? [];
  }

  private get(key: string): DeploymentObject | undefined {
    return findIn(this.informers, key);
  }

  private enqueue(key: string): void {
    if (this.stopping) return;
    let s = this.deployments.get(key);
    if (!s) {
      s = { key, replicas: [], chain: Promise.resolve(), queued: false, conditions: new Map() };
      this.deployments.set(key, s);
    }
    const state = s;
    if (state.queued) return;
    state.queued = true;
    state.chain = state.chain
      .then(() => {
        state.queued = false;
        return this.stopping ? undefined : this.reconcile(state);
      })
      .catch((error: unknown) => {
        this.deps.log('deployment reconcile failed; retrying', {
          deployment: key,
          error: String((error as Error)?.message ?? error),
        });
        setTimeout(() => this.enqueue(key), 1000);
      });
  }

  private async reconcile(s: DeploymentState): Promise<void> {
    const deployment = this.get(s.key);
    if (!deployment || deployment.metadata.deletionTimestamp) {
      for (const r of [...s.replicas]) await this.stopPod(s, r);
      this.deployments.delete(s.key);
      return;
    }
    const want = deployment.spec.replicas ?? 1;
    const hash = podTemplateHash(deployment.spec.template);
    for (let i = 0; i < 2 * want + 4; i++) {
      if (want === 0) {
        for (const r of [...s.replicas]) await this.stopPod(s, r);
        break;
      }
      const step = nextRolloutStep({
        want,
        hash,
        replicas: s.replicas.map((r) => ({ hash: r.hash, phase: r.runtime.phase, ready: r.runtime.ready })),
      });
      if (step.kind === 'none') break;
      if (step.kind === 'stop') {
        const r = s.replicas[step.index]!;
        this.deps.log(`deployment pod ${step.why}; stopping it`, {
          deployment: s.key,
          pod: r.runtime.name,
          message: r.runtime.podMessage,
        });
        await this.stopPod(s, r, step.why === 'failed' ? 2000 : undefined);
        continue;
      }
      for (let n = 0; n < step.count; n++) await this.startPod(s, deployment, hash);
      break;
    }
    await this.syncStatus(s, deployment, hash);
  }

  private async startPod(s: DeploymentState, deployment: DeploymentObject, hash: string): Promise<void> {
    const ns = deployment.metadata.namespace;
    const template = deployment.spec.template;
    await this.deps.prepareNamespace(ns, template.spec.serviceAccountName);
    const pod = await this.deps.kube.create<PodObject>(at(RESOURCES.pod, ns), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${deployment.metadata.name.slice(0, 40)}-${hash}-${randomBytes(3).toString('hex').slice(0, 5)}`,
        namespace: ns,
        labels: { ...(template.metadata?.labels ?? {}), 'pod-template-hash': hash },
        annotations: template.metadata?.annotations ?? {},
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: deployment.metadata.name,
            uid: deployment.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...template.spec, nodeName: this.deps.nodeName },
    } as PodObject);
    const runtime = this.deps.runtime(pod, `${ns}_${pod.metadata.name}`, () => this.enqueue(s.key));
    s.replicas.push({ runtime, hash });
    runtime.start();
    this.deps.log('deployment pod started', { deployment: s.key, pod: pod.metadata.name, hash });
  }

  private async stopPod(s: DeploymentState, r: DeploymentState['replicas'][number], graceMs?: number): Promise<void> {
    s.replicas = s.replicas.filter((x) => x !== r);
    await r.runtime.stop(graceMs);
    await this.deps.kube
      .delete(at(RESOURCES.pod, r.runtime.pod.metadata.namespace, r.runtime.name), { gracePeriodSeconds: 0 })
      .catch(() => undefined);
    this.deps.log('deployment pod stopped', { deployment: s.key, pod: r.runtime.name });
  }

  private condition(
    s: DeploymentState,
    type: string,
    status: 'True' | 'False',
    reason: string,
    message: string,
  ): Condition {
    const now = rfc3339(new Date());
    const previous = s.conditions.get(type);
    const same = previous?.status === status && previous.reason === reason;
    const condition: Condition = {
      type,
      status,
      reason,
      message,
      lastUpdateTime: same ? previous.lastUpdateTime : now,
      lastTransitionTime: previous?.status === status ? previous.lastTransitionTime : now,
    };
    s.conditions.set(type, condition);
    return condition;
  }

  private async syncStatus(s: DeploymentState, deployment: DeploymentObject, hash: string): Promise<void> {
    for (const { runtime } of s.replicas) {
      await this.deps.kube
        .patch(
          { ...at(RESOURCES.pod, runtime.pod.metadata.namespace, runtime.name), subresource: 'status' },
          { status: runtime.status() },
          'merge',
        )
        .catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
        });
    }
    const want = deployment.spec.replicas ?? 1;
    const updated = s.replicas.filter((r) => r.hash === hash);
    const ready = s.replicas.filter((r) => r.runtime.ready).length;
    const name = `${deployment.metadata.name}-${hash}`;
    const rolledOut = updated.length === want && s.replicas.length === want && updated.every((r) => r.runtime.ready);
    const conditions = [
      ready >= want
        ? this.condition(s, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
        : this.condition(
            s,
            'Available',
            'False',
            'MinimumReplicasUnavailable',
            'Deployment does not have minimum availability.',
          ),
      rolledOut
        ? this.condition(
            s,
            'Progressing',
            'True',
            'NewReplicaSetAvailable',
            `ReplicaSet "${name}" has successfully progressed.`,
          )
        : this.condition(s, 'Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${name}" is progressing.`),
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
    await this.deps.kube.patch(
      { ...DEPLOYMENT(deployment.metadata.namespace, deployment.metadata.name), subresource: 'status' },
      { status: { ...counts, conditions } },
      'merge',
    );
    s.lastStatus = text;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(
      [...this.deployments.values()].map(async (s) => {
        await s.chain.catch(() => undefined);
        await Promise.all(s.replicas.map((r) => r.runtime.stop(5000)));
      }),
    );
  }
}
