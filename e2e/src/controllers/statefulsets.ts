// The StatefulSet controller of the local runner, with a Service in front: what they do for a
// single-replica StatefulSet (a tenant's dedicated etcd). Pod `<sts>-0` runs the template on the
// local node; each volumeClaimTemplate is a host dir that outlives the pod (LocalNode.claimPath),
// as a PersistentVolume does; every container port gets a stable host port for the
// StatefulSet's lifetime, like a Service in front of it. replicas 0 stops the pod, 1 starts it;
// more than one replica is run as one (logged). status.readyReplicas follows the pod's readiness.
import { createHash } from 'node:crypto';
import { at, RESOURCES, type KubeObject } from '@kdc/shared';
import type { PodRuntime } from '../kubelet/pod.ts';
import { ownerKey, type PodTemplate } from '../kubelet/pod-spec.ts';
import type { ServiceProxy } from '../kubelet/service.ts';
import { ownedPod } from './owned-pod.ts';
import { Watched, type ControllerContext } from './watch.ts';

export const STATEFULSET = (namespace?: string, name?: string) => at(RESOURCES.statefulSet, namespace, name);

export interface StatefulSetObject extends KubeObject {
  metadata: KubeObject['metadata'] & { name: string; namespace: string; uid?: string; generation?: number };
  spec: {
    replicas?: number;
    template: PodTemplate;
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

interface SetState {
  pod?: PodRuntime;
  hash?: string;
  /** Container port -> its Service. */
  services: Map<number, ServiceProxy>;
  lastStatus?: string;
}

const templateHash = (sts: StatefulSetObject) =>
  createHash('sha256').update(JSON.stringify(sts.spec.template)).digest('hex').slice(0, 10);

export class StatefulSetController {
  private readonly context: ControllerContext;
  private readonly watched: Watched<StatefulSetObject>;
  private readonly sets = new Map<string, SetState>();

  constructor(context: ControllerContext) {
    this.context = context;
    this.watched = new Watched<StatefulSetObject>(context, {
      name: 'statefulset',
      resource: RESOURCES.statefulSet,
      reconcile: (key) => this.reconcile(key),
      backoff: { baseDelayMs: 1000, maxDelayMs: 1000 },
    });
    context.node.onPodChange((pod) => {
      const key = ownerKey(pod.pod, RESOURCES.statefulSet.kind);
      if (key && this.sets.get(key)?.pod === pod) this.watched.controller.enqueue(key);
    });
  }

  start(): Promise<void> {
    return this.watched.start();
  }

  private log(message: string, fields: Record<string, unknown>): void {
    this.context.logger.info(fields, message);
  }

  /** The stable host port in front of a container port of the StatefulSet's pod. */
  servicePort(namespace: string, name: string, containerPort: number): number | undefined {
    return this.sets.get(`${namespace}/${name}`)?.services.get(containerPort)?.port;
  }

  private async reconcile(key: string): Promise<void> {
    const sts = this.watched.get(key);
    let s = this.sets.get(key);
    if (!s) {
      s = { services: new Map() };
      this.sets.set(key, s);
    }
    if (!sts || sts.metadata.deletionTimestamp) {
      await this.stopPod(key, s);
      await Promise.all([...s.services.values()].map((service) => service.close()));
      this.sets.delete(key);
      return;
    }
    await this.ensureServices(key, s, sts);
    const replicas = sts.spec.replicas ?? 1;
    if (replicas > 1)
      this.log('statefulset has more than one replica; the local runner runs one', { sts: key, replicas });
    const hash = templateHash(sts);
    if (replicas === 0 || (s.pod && s.hash !== hash) || s.pod?.phase === 'Failed') await this.stopPod(key, s);
    if (replicas > 0 && !s.pod) await this.startPod(key, s, sts, hash);
    await this.syncStatus(s, sts);
  }

  private async ensureServices(key: string, s: SetState, sts: StatefulSetObject): Promise<void> {
    const ports = sts.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
    for (const containerPort of ports) {
      if (s.services.has(containerPort)) continue;
      const service = await this.context.node.openService(() => s.pod?.inboundSocket(containerPort));
      s.services.set(containerPort, service);
      this.log('statefulset service port', { sts: key, containerPort, hostPort: service.port });
    }
  }

  private async startPod(key: string, s: SetState, sts: StatefulSetObject, hash: string): Promise<void> {
    const { kube, node } = this.context;
    const ns = sts.metadata.namespace;
    const name = `${sts.metadata.name}-0`;
    await kube.delete(at(RESOURCES.pod, ns, name), { gracePeriodSeconds: 0 }).catch(() => undefined);
    const claims = (sts.spec.volumeClaimTemplates ?? []).map((t) => ({
      name: t.metadata.name,
      persistentVolumeClaim: { claimName: `${t.metadata.name}-${name}` },
    }));
    const admitted = await node.createPod(
      ownedPod(RESOURCES.statefulSet, sts, {
        name,
        labels: {
          'statefulset.kubernetes.io/pod-name': name,
          'controller-revision-hash': hash,
          'apps.kubernetes.io/pod-index': '0',
        },
        volumes: [...(sts.spec.template.spec.volumes ?? []), ...claims],
      }),
    );
    s.pod = node.run(admitted, { group: 'statefulsets' });
    s.hash = hash;
    this.log('statefulset pod started', { sts: key, pod: name, hash });
  }

  private async stopPod(key: string, s: SetState): Promise<void> {
    const pod = s.pod;
    if (!pod) return;
    s.pod = undefined;
    s.hash = undefined;
    await this.context.node.stop(pod);
    this.log('statefulset pod stopped', { sts: key, pod: pod.name });
  }

  private async syncStatus(s: SetState, sts: StatefulSetObject): Promise<void> {
    const running = s.pod ? 1 : 0;
    const ready = s.pod?.ready ? 1 : 0;
    const status = {
      observedGeneration: sts.metadata.generation ?? 0,
      replicas: running,
      readyReplicas: ready,
      availableReplicas: ready,
      currentReplicas: running,
      updatedReplicas: running,
    };
    const text = JSON.stringify(status);
    if (text === s.lastStatus) return;
    const ref = STATEFULSET(sts.metadata.namespace, sts.metadata.name);
    await this.context.kube.patch({ ...ref, subresource: 'status' }, { status }, 'merge');
    s.lastStatus = text;
  }

  /** The pods stop (their objects stay, as on a node going down) and the Services close. */
  async stop(): Promise<void> {
    await this.watched.stop();
    await Promise.all(
      [...this.sets.values()].map(async (s) => {
        if (s.pod) await this.context.node.stop(s.pod, { graceMs: 5000, object: 'keep' });
        await Promise.all([...s.services.values()].map((service) => service.close()));
      }),
    );
  }
}
