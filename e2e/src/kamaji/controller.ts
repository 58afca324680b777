// Kamaji's controller on the local runner. For each TenantControlPlane in the watched namespaces:
// its PKI and admin kubeconfig Secrets (pki.ts), `replicas` control-plane pods (template.ts) on
// the local node rolled like Kamaji's Deployment (rollout.ts), a stable endpoint in front of the
// ready pods (the TCP's Service), its status (status.ts), and cleanup once it is deleted.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { at, RESOURCES, splitKey, type ReconcileResult, type TenantControlPlaneObject } from '@kdc/shared';
import { Watched, type ControllerContext } from '../controllers/watch.ts';
import { withTimeout } from '../kubelet/node.ts';
import type { PodRuntime } from '../kubelet/pod.ts';
import type { PodObject } from '../kubelet/pod-spec.ts';
import type { ServiceProxy } from '../kubelet/service.ts';
import { deleteEtcdPrefix, etcdTarget } from './datastore.ts';
import { ensurePki, type TcpPki } from './pki.ts';
import { nextRolloutStep } from './rollout.ts';
import { contains, sleepingStatus, tcpStatus } from './status.ts';
import {
  NAME_LABEL,
  PKI_SECRETS,
  apiServerImage,
  apiServerPort,
  datastoreCertsSecret,
  etcdPrefix,
  readTcp,
  templateHash,
  type TenantControlPlane,
} from './tcp.ts';
import { buildPod } from './template.ts';

/** A pod that failed is replaced after this long, so a pod that fails at once does not spin. */
const FAILED_POD_REPLACE_MS = 2000;

export interface TcpControllerOptions {
  /** Working dir: `tcp/<ns>_<name>` (PKI, admin kubeconfig), `pods/...`, `datastore/...`. */
  dir: string;
  /** The platform's etcd (a TCP without a DataStore keeps its data there). */
  etcdEndpoint: string;
  /** What Kamaji's kube-apiserver image runs, wherever registrySettings point. */
  apiServerBinary: string;
  /** Seconds between SIGTERM and SIGKILL when a pod stops (default: the Pod's). */
  terminationGraceSeconds?: number;
  deleteDataOnDelete: boolean;
}

export interface Replica {
  pod: PodRuntime;
  hash: string;
  dir: string;
  failedAt?: number;
}

export interface TcpState {
  namespace: string;
  name: string;
  dir: string;
  service: ServiceProxy;
  pki?: TcpPki;
  /** Admin kubeconfig file (the content of the `<tcp>-admin-kubeconfig` Secret). */
  adminKubeconfig: string;
  /** The control-plane pods, in start order (rollout.ts decides the next change). */
  replicas: Replica[];
  holdBack: number;
  /** Round-robin over the ready pods, like the TCP's Service. */
  nextConnection: number;
  everReady: boolean;
  error?: string;
  deleted: boolean;
  tearingDown: boolean;
}

export class TcpController {
  private readonly context: ControllerContext;
  private readonly options: TcpControllerOptions;
  private readonly watched: Watched<TenantControlPlaneObject>;
  private readonly tcps = new Map<string, TcpState>();
  private readonly creating = new Map<string, Promise<TcpState>>();

  constructor(context: ControllerContext, options: TcpControllerOptions) {
    this.context = context;
    this.options = options;
    this.watched = new Watched(context, {
      name: 'kamaji-tcp',
      resource: RESOURCES.tenantControlPlane,
      reconcile: (key) => this.reconcile(key),
      backoff: { baseDelayMs: 500, maxDelayMs: 10_000 },
    });
    // A pod's change (readiness above all) may move the rollout on, and shows in the status.
    context.node.onPodChange((pod) => {
      const key = `${pod.pod.metadata.namespace}/${pod.pod.metadata.labels?.[NAME_LABEL]}`;
      const r = this.tcps.get(key)?.replicas.find((x) => x.pod === pod);
      if (!r) return;
      if (pod.phase === 'Failed') r.failedAt ??= Date.now();
      // Changes come in bursts (containers starting one after the other): one reconcile for them.
      this.watched.controller.queue.addAfter(key, 100);
    });
  }

  private log(message: string, fields: Record<string, unknown> = {}): void {
    this.context.logger.info(fields, message);
  }

  start(): Promise<void> {
    return this.watched.start();
  }

  get(key: string): TenantControlPlane | undefined {
    const object = this.watched.get(key);
    return object && readTcp(object);
  }

  state(namespace: string, name: string): TcpState | undefined {
    return this.tcps.get(`${namespace}/${name}`);
  }

  /** Keeps `count` pods of an older template beside the new ones during a rollout. */
  async holdBack(key: string, count: number): Promise<void> {
    const s = await this.stateFor(key);
    s.holdBack = count;
    this.log('rollout hold-back', { tcp: key, count });
    this.watched.controller.enqueue(key);
  }

  private stateFor(key: string): Promise<TcpState> {
    const existing = this.tcps.get(key);
    if (existing) return Promise.resolve(existing);
    let creating = this.creating.get(key);
    if (!creating) {
      creating = (async () => {
        const { namespace = '', name } = splitKey(key);
        const dir = join(this.options.dir, 'tcp', `${namespace}_${name}`);
        mkdirSync(dir, { recursive: true });
        // The TCP's Service: to the ready pods in turn (to any pod while none is ready).
        const service = await this.context.node.openService(() => {
          const s = this.tcps.get(key);
          const tcp = this.get(key);
          if (!s || !tcp) return undefined;
          const ready = s.replicas.filter((r) => r.pod.ready);
          const pool = ready.length ? ready : s.replicas;
          return pool[s.nextConnection++ % Math.max(1, pool.length)]?.pod.inboundSocket(apiServerPort(tcp));
        });
        const s: TcpState = {
          namespace,
          name,
          dir,
          service,
          adminKubeconfig: join(dir, 'admin.kubeconfig'),
          replicas: [],
          holdBack: 0,
          nextConnection: 0,
          everReady: false,
          deleted: false,
          tearingDown: false,
        };
        this.tcps.set(key, s);
        return s;
      })().finally(() => this.creating.delete(key));
      this.creating.set(key, creating);
    }
    return creating;
  }

  private async reconcile(key: string): Promise<ReconcileResult | void> {
    const s = await this.stateFor(key);
    try {
      const result = await this.sync(key, s);
      s.error = undefined;
      return result;
    } catch (error) {
      s.error = String((error as Error)?.message ?? error);
      throw error;
    }
  }

  private async sync(key: string, s: TcpState): Promise<ReconcileResult | void> {
    const tcp = this.get(key);
    if (!tcp || tcp.metadata.deletionTimestamp) {
      if (!s.deleted) await this.teardown(s, tcp);
      return;
    }
    s.deleted = false;
    s.pki = await ensurePki({
      kube: this.context.kube,
      tcp,
      dir: s.dir,
      known: s.pki,
      server: `https://127.0.0.1:${s.service.port}`,
      kubeconfigFile: s.adminKubeconfig,
      log: (message, fields) => this.log(message, fields),
    });
    const replicas = tcp.spec.controlPlane?.deployment?.replicas;
    if (replicas === 0) {
      // Scaled to zero: Kamaji's Deployment has no pods and the TCP reports Sleeping.
      if (s.replicas.length) {
        this.log('replicas 0; stopping the pod', { tcp: key });
        await this.stopPods(s);
      }
      await this.writeStatus(s, tcp, sleepingStatus(tcp));
      return;
    }
    // Somebody deleted a Pod object: like a ReplicaSet, replace the pod.
    for (const r of [...s.replicas]) {
      if (!this.context.node.objectDeleted(r.pod)) continue;
      this.log('pod object deleted; replacing the pod', { tcp: key, pod: r.pod.name });
      await this.stopReplica(s, r);
    }
    const hash = templateHash(tcp);
    const want = replicas ?? 1;
    let requeueAfterMs: number | undefined;
    // A few changes per reconcile: a started pod must become ready before the rollout goes on
    // (its readiness change brings the next reconcile).
    for (let i = 0; i < 2 * want + 4; i++) {
      const step = nextRolloutStep({
        want,
        hash,
        holdBack: s.holdBack,
        replicas: s.replicas.map((r) => ({ hash: r.hash, phase: r.pod.phase, ready: r.pod.ready })),
      });
      if (step.kind === 'none') break;
      if (step.kind === 'stop') {
        const r = s.replicas[step.index]!;
        const wait = FAILED_POD_REPLACE_MS - (Date.now() - (r.failedAt ?? Date.now()));
        if (step.why === 'failed' && wait > 0) {
          requeueAfterMs = wait;
          break;
        }
        const message = {
          failed: 'pod failed; replacing it',
          replaced: 'pod template changed; replacing the pod',
          surplus: 'scaled down; stopping a pod',
        }[step.why];
        this.log(message, { tcp: key, pod: r.pod.name, from: r.hash, to: hash, message: r.pod.podMessage });
        // Without its sandbox the pod has no network: graceful shutdowns would only time out.
        await this.stopReplica(s, r, step.why === 'failed' ? 2000 : undefined);
        continue;
      }
      for (let n = 0; n < step.count; n++) await this.startReplica(s, tcp, hash);
      break;
    }
    if (s.replicas.length) {
      if (s.replicas.some((r) => r.pod.ready)) s.everReady = true;
      const views = s.replicas.map((r) => ({ hash: r.hash, ready: r.pod.ready }));
      await this.writeStatus(
        s,
        tcp,
        tcpStatus({ tcp, hostPort: s.service.port, replicas: views, everReady: s.everReady }),
      );
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  private async startReplica(s: TcpState, tcp: TenantControlPlane, hash: string): Promise<void> {
    // The first pod of a template keeps the name it always had; more of the same template are numbered.
    const taken = new Set(s.replicas.map((r) => r.pod.name));
    const base = `${s.name}-${hash}-local`;
    let name = base;
    for (let n = 1; taken.has(name); n++) name = `${base}-${n}`;
    const suffix = name.slice(base.length);
    const built = buildPod(
      tcp,
      hash,
      await etcdTarget(this.context.kube, tcp, this.options.etcdEndpoint, join(this.options.dir, 'datastore')),
    );
    // Objects left by a runner that stopped without cleaning up; never those of pods running now.
    if (!s.replicas.length) await this.deletePodObjects(s.namespace, s.name);
    const admitted = await this.context.node.createPod({ ...built, metadata: { ...built.metadata, name } });
    const dir = join(this.options.dir, 'pods', `${s.namespace}_${s.name}_${hash}${suffix}`);
    rmSync(dir, { recursive: true, force: true });
    const pod = this.context.node.run(admitted, {
      dir,
      logPrefix: `${s.namespace}_${s.name}${suffix}`,
      images: { [apiServerImage(tcp).replace(/:[^:/]*$/, '')]: [this.options.apiServerBinary] },
    });
    s.replicas.push({ pod, hash, dir });
    this.log('started control-plane pod', { tcp: `${s.namespace}/${s.name}`, pod: name, hash });
  }

  private async deletePodObjects(namespace: string, tcpName: string): Promise<void> {
    const { kube, node } = this.context;
    const pods = await kube.list<PodObject>(at(RESOURCES.pod, namespace), {
      labelSelector: `${NAME_LABEL}=${tcpName}`,
      fieldSelector: `spec.nodeName=${node.name}`,
    });
    for (const p of pods.items)
      await kube.delete(at(RESOURCES.pod, namespace, p.metadata.name), { gracePeriodSeconds: 0 });
  }

  private async stopReplica(s: TcpState, r: Replica, graceMs?: number): Promise<void> {
    const grace = this.options.terminationGraceSeconds;
    s.replicas = s.replicas.filter((x) => x !== r);
    await this.context.node.stop(r.pod, { graceMs: graceMs ?? (grace === undefined ? undefined : grace * 1000) });
  }

  private async stopPods(s: TcpState): Promise<void> {
    for (const r of [...s.replicas]) await this.stopReplica(s, r);
  }

  /** Through the status subresource, and only when it differs from what is there. */
  private async writeStatus(
    s: TcpState,
    tcp: TenantControlPlane,
    wanted: { kubernetesResources: { version: unknown } },
  ) {
    if (contains(tcp.status ?? {}, wanted)) return;
    await this.patchStatus(s, wanted);
    this.log('TCP status', { tcp: `${s.namespace}/${s.name}`, version: wanted.kubernetesResources.version });
  }

  private async patchStatus(s: TcpState, status: unknown): Promise<void> {
    const ref = at(RESOURCES.tenantControlPlane, s.namespace, s.name);
    await this.context.kube.patch({ ...ref, subresource: 'status' }, { status }, 'merge');
  }

  private async teardown(s: TcpState, tcp: TenantControlPlane | undefined): Promise<void> {
    const key = `${s.namespace}/${s.name}`;
    this.log('TCP deleted; stopping its pod', { tcp: key });
    s.tearingDown = true;
    try {
      await this.cleanup(s, tcp);
    } finally {
      s.tearingDown = false;
    }
    this.log('TCP cleaned up', { tcp: key });
  }

  private async cleanup(s: TcpState, tcp: TenantControlPlane | undefined): Promise<void> {
    const { kube } = this.context;
    await this.stopPods(s);
    await this.deletePodObjects(s.namespace, s.name).catch(() => undefined);
    for (const secret of Object.values(PKI_SECRETS(s.name)))
      await kube.delete(at(RESOURCES.secret, s.namespace, secret));
    if (tcp?.spec.dataStore) {
      await kube.delete(at(RESOURCES.secret, s.namespace, datastoreCertsSecret(s.name))).catch(() => undefined);
      this.log('TCP on a DataStore: its data stays in that etcd', {
        tcp: `${s.namespace}/${s.name}`,
        dataStore: tcp.spec.dataStore,
      });
    } else if (this.options.deleteDataOnDelete) {
      const prefix = tcp ? etcdPrefix(tcp) : `/${s.namespace}_${s.name}`;
      await deleteEtcdPrefix(this.options.etcdEndpoint, `${prefix}/`);
    }
    s.deleted = true;
    s.pki = undefined;
    s.everReady = false;
    rmSync(s.dir, { recursive: true, force: true });
    mkdirSync(s.dir, { recursive: true });
  }

  /** No more events or reconciles; the pods keep running until stopPods. */
  stopWatching(): Promise<void> {
    return this.watched.stop();
  }

  /** A stopped node's pods are gone, and no TCP is served any more (best effort: the apiserver may be going). */
  async shutdown(): Promise<void> {
    const grace = this.options.terminationGraceSeconds;
    await Promise.all(
      [...this.tcps.values()].map(async (s) => {
        const pods = s.replicas.map((r) => r.pod);
        s.replicas = [];
        const graceMs = grace === undefined ? 10_000 : grace * 1000;
        await Promise.all(pods.map((pod) => this.context.node.stop(pod, { graceMs, deleteTimeoutMs: 3000 })));
        if (pods.length)
          await withTimeout(
            this.patchStatus(s, { kubernetesResources: { version: { status: 'NotReady' } } }),
            3000,
          ).catch(() => undefined);
        await s.service.close();
      }),
    );
  }

  killNow(): void {
    for (const s of this.tcps.values()) for (const r of s.replicas) r.pod.killNow();
  }
}
