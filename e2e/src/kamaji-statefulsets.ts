// The StatefulSet half of the local runner: what the StatefulSet controller, a kubelet and a
// Service would do for a single-replica StatefulSet (a tenant's dedicated etcd). Pod `<sts>-0`
// runs the template generically (kamaji-pod.ts); each volumeClaimTemplate is a host dir that
// outlives the pod (`claimPath`), as a PersistentVolume does; every container port gets a stable
// host port for the StatefulSet's lifetime, like a Service in front of it. replicas 0 stops the
// pod, 1 starts it; more than one replica is run as one (logged). status.readyReplicas follows the
// pod's readiness.
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { isNotFound, type Informer, type KubeObject, type ResourceRef, at, RESOURCES } from '@kdc/shared';
import type { PodObject, PodRuntime } from './kamaji-pod.ts';
import { findIn, watchAll, type WorkloadRunnerDeps } from './kamaji-workloads.ts';
import { freePort } from './ports.ts';

export const STATEFULSET = (namespace?: string, name?: string): ResourceRef => ({
  ...RESOURCES.statefulSet,
  namespace,
  name,
});

export interface StatefulSetObject extends KubeObject {
  metadata: KubeObject['metadata'] & { name: string; namespace: string; uid?: string; generation?: number };
  spec: {
    replicas?: number;
    template: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec: PodObject['spec'];
    };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

export interface StatefulSetRunnerDeps extends WorkloadRunnerDeps {
  /** A stable host port was allocated (the runner lets later pods reach it). */
  onServicePort(port: number): void;
}

interface SetState {
  key: string;
  runtime?: PodRuntime;
  hash?: string;
  ports: Map<number, { hostPort: number; server: Server }>;
  sockets: Set<Socket>;
  chain: Promise<void>;
  lastStatus?: string;
}

const templateHash = (sts: StatefulSetObject) =>
  createHash('sha256').update(JSON.stringify(sts.spec.template)).digest('hex').slice(0, 10);

export class LocalStatefulSetRunner {
  private readonly deps: StatefulSetRunnerDeps;
  private informers: Informer<StatefulSetObject>[] = [];
  private readonly sets = new Map<string, SetState>();
  private stopping = false;

  constructor(deps: StatefulSetRunnerDeps) {
    this.deps = deps;
  }

  async start(): Promise<void> {
    this.informers = await watchAll<StatefulSetObject>(this.deps.kube, STATEFULSET, this.deps.namespaces, (sts) =>
      this.enqueue(`${sts.metadata.namespace}/${sts.metadata.name}`),
    );
  }

  /** The stable host port in front of a container port of the StatefulSet's pod. */
  servicePort(namespace: string, name: string, containerPort: number): number | undefined {
    return this.sets.get(`${namespace}/${name}`)?.ports.get(containerPort)?.hostPort;
  }

  /** Whether pod 0 runs and is Ready. */
  ready(namespace: string, name: string): boolean {
    return Boolean(this.sets.get(`${namespace}/${name}`)?.runtime?.ready);
  }

  private get(key: string): StatefulSetObject | undefined {
    return findIn(this.informers, key);
  }

  private enqueue(key: string): void {
    if (this.stopping) return;
    let s = this.sets.get(key);
    if (!s) {
      s = { key, ports: new Map(), sockets: new Set(), chain: Promise.resolve() };
      this.sets.set(key, s);
    }
    const state = s;
    state.chain = state.chain
      .then(() => this.reconcile(state))
      .catch((error: unknown) => {
        this.deps.log('statefulset reconcile failed; retrying', {
          sts: key,
          error: String((error as Error)?.message ?? error),
        });
        setTimeout(() => this.enqueue(key), 1000);
      });
  }

  private async reconcile(s: SetState): Promise<void> {
    const sts = this.get(s.key);
    if (!sts || sts.metadata.deletionTimestamp) {
      await this.stopPod(s);
      for (const { server } of s.ports.values()) server.close();
      for (const socket of s.sockets) socket.destroy();
      this.sets.delete(s.key);
      return;
    }
    await this.ensureServicePorts(s, sts);
    const replicas = sts.spec.replicas ?? 1;
    if (replicas > 1)
      this.deps.log('statefulset has more than one replica; the local runner runs one', { sts: s.key, replicas });
    const hash = templateHash(sts);
    if (replicas === 0 || (s.runtime && s.hash !== hash) || s.runtime?.phase === 'Failed') await this.stopPod(s);
    if (replicas > 0 && !s.runtime) await this.startPod(s, sts, hash);
    await this.syncStatus(s, sts);
  }

  private async ensureServicePorts(s: SetState, sts: StatefulSetObject): Promise<void> {
    const ports = sts.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => p.containerPort);
    for (const containerPort of ports) {
      if (s.ports.has(containerPort)) continue;
      const hostPort = await freePort();
      const server = createServer((client) => {
        const pod = s.runtime;
        if (!pod) return client.destroy();
        const upstream = createConnection(pod.inboundSocket(containerPort));
        for (const sock of [client, upstream]) {
          s.sockets.add(sock);
          sock.on('close', () => s.sockets.delete(sock));
        }
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(hostPort, '127.0.0.1', resolve);
      });
      s.ports.set(containerPort, { hostPort, server });
      this.deps.onServicePort(hostPort);
      this.deps.log('statefulset service port', { sts: s.key, containerPort, hostPort });
    }
  }

  private async startPod(s: SetState, sts: StatefulSetObject, hash: string): Promise<void> {
    const ns = sts.metadata.namespace;
    const name = `${sts.metadata.name}-0`;
    await this.deps.kube.delete(at(RESOURCES.pod, ns, name), { gracePeriodSeconds: 0 }).catch(() => undefined);
    await this.deps.prepareNamespace(ns, sts.spec.template.spec.serviceAccountName);
    const claims = (sts.spec.volumeClaimTemplates ?? []).map((t) => ({
      name: t.metadata.name,
      persistentVolumeClaim: { claimName: `${t.metadata.name}-${name}` },
    }));
    const pod = await this.deps.kube.create<PodObject>(at(RESOURCES.pod, ns), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: ns,
        labels: {
          ...(sts.spec.template.metadata?.labels ?? {}),
          'statefulset.kubernetes.io/pod-name': name,
          'controller-revision-hash': hash,
          'apps.kubernetes.io/pod-index': '0',
        },
        annotations: sts.spec.template.metadata?.annotations ?? {},
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'StatefulSet',
            name: sts.metadata.name,
            uid: sts.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        ...sts.spec.template.spec,
        nodeName: this.deps.nodeName,
        volumes: [...(sts.spec.template.spec.volumes ?? []), ...claims],
      },
    } as PodObject);
    const runtime = this.deps.runtime(pod, `${ns}_${name}`, () => this.enqueue(s.key));
    s.runtime = runtime;
    s.hash = hash;
    runtime.start();
    this.deps.log('statefulset pod started', { sts: s.key, pod: name, hash });
  }

  private async stopPod(s: SetState): Promise<void> {
    const runtime = s.runtime;
    if (!runtime) return;
    s.runtime = undefined;
    s.hash = undefined;
    await runtime.stop();
    await this.deps.kube
      .delete(at(RESOURCES.pod, runtime.pod.metadata.namespace, runtime.name), { gracePeriodSeconds: 0 })
      .catch(() => undefined);
    this.deps.log('statefulset pod stopped', { sts: s.key, pod: runtime.name });
  }

  private async syncStatus(s: SetState, sts: StatefulSetObject): Promise<void> {
    const runtime = s.runtime;
    if (runtime) {
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
    const running = runtime ? 1 : 0;
    const ready = runtime?.ready ? 1 : 0;
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
    await this.deps.kube.patch(
      { ...STATEFULSET(sts.metadata.namespace, sts.metadata.name), subresource: 'status' },
      { status },
      'merge',
    );
    s.lastStatus = text;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(
      [...this.sets.values()].map(async (s) => {
        await s.chain.catch(() => undefined);
        await s.runtime?.stop(5000);
        for (const socket of s.sockets) socket.destroy();
        await Promise.all([...s.ports.values()].map(({ server }) => new Promise((r) => server.close(r))));
      }),
    );
  }
}
