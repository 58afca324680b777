// The one local node: every pod of the runner (a TCP's control plane, a Deployment's,
// StatefulSet's or Job's, a bare Pod) starts, stops and is observed here, as on a kubelet.
//
// Contract for the controllers that use it:
//   createPod(body)    what kube-controller-manager would have made in the namespace first
//                      (default ServiceAccount, kube-root-ca.crt), then the Pod object, bound here
//   run(pod)           runs an admitted Pod object; from then on the node writes its status on
//                      every change (conditions keep their transition times) until it is stopped
//   onPodChange(fn)    called with every pod that changed (containers, probes, phase, or its
//                      object found deleted: objectDeleted(pod)); owners find theirs by ownerKey
//   stop(pod)          kubelet shutdown of the pod; then its object is deleted, kept, or kept with
//                      a last phase (a Job's pod)
//   runToEnd(pod)      run + wait for Succeeded/Failed (or a give-up) + stop with that phase
//   openService(pick)  a stable host port in front of pods (a Service) that every pod can reach
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  at,
  Controller,
  isAlreadyExists,
  isNotFound,
  RESOURCES,
  type ControllerOptions,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from '@kdc/shared';
import { sleep } from '../wait.ts';
import type { LocalImage } from './image.ts';
import { PodRuntime } from './pod.ts';
import type { PodObject } from './pod-spec.ts';
import { carryTransitions, type TransitionTimes } from './pod-status.ts';
import { ServiceProxy } from './service.ts';

/** spec.nodeName of every Pod object the node runs. */
export const LOCAL_NODE_NAME = 'kamaji-local-runner';

export interface LocalNodeOptions extends Pick<ControllerOptions, 'logger' | 'registry'> {
  kube: KubeClient;
  /** Pods' working dirs (`<dir>/<group>/...`) and PersistentVolumeClaims (`<dir>/volumes/<ns>/<claim>`). */
  dir: string;
  logDir: string;
  images: Record<string, LocalImage>;
  /** The management apiserver as pods see it: KUBERNETES_SERVICE_*, and the CA of kube-root-ca.crt. */
  apiServer: { url: string; caPem: string };
  /** Host ports every pod may reach (the platform's servers); Services add theirs. */
  outboundPorts: number[];
  probePeriodCapSeconds: number;
  backoff: { initialMs: number; maxMs: number };
  volumeResyncMs: number;
  volumeOwnership: 'kubelet' | 'world-readable';
}

export interface RunOptions {
  /** The pod's working dir; default `<node dir>/<group>/<ns>_<name>_w<n>`. */
  dir?: string;
  group?: string;
  /** Log file names `<logPrefix>_<container>.log`; default `<ns>_<name>`. */
  logPrefix?: string;
  /** More images than the node's table (Kamaji's apiserver wherever registrySettings point). */
  images?: Record<string, LocalImage>;
}

export interface StopOptions {
  /** SIGTERM to SIGKILL; default the pod's terminationGracePeriodSeconds. */
  graceMs?: number;
  /** The Pod object afterwards: deleted (default, the pod's controller is done with it), kept, or kept with a last phase. */
  object?: 'delete' | 'keep' | { phase: 'Succeeded' | 'Failed' };
  /** Gives up on the delete after this long (at shutdown the apiserver may be going away). */
  deleteTimeoutMs?: number;
}

interface Tracked {
  runtime: PodRuntime;
  written?: string;
  times: TransitionTimes;
  writing: Promise<void>;
  objectDeleted: boolean;
}

/** A random address in 127.64.0.0-127.250.255.255: distinct pods (and runners in other test processes) do not collide. */
function randomLoopbackIp(): string {
  const [a, b, c] = randomBytes(3);
  return `127.${64 + (a! % 187)}.${b}.${1 + (c! % 254)}`;
}

const podKey = (pod: PodObject) => `${pod.metadata.namespace}/${pod.metadata.name}`;

export class LocalNode {
  readonly name = LOCAL_NODE_NAME;
  private readonly options: LocalNodeOptions;
  private readonly kube: KubeClient;
  private readonly pods = new Map<string, Tracked>();
  private readonly listeners: ((pod: PodRuntime) => void)[] = [];
  private outboundPorts: number[];
  /** Unix socket paths are limited to 108 bytes: keep them short, whatever `dir` is. */
  private readonly sockRoot = mkdtempSync(join(tmpdir(), 'kdc-kr-'));
  private seq = 0;
  /** The status manager: one write at a time per pod, retried with backoff. */
  private readonly statuses: Controller;

  constructor(options: LocalNodeOptions) {
    this.options = options;
    this.kube = options.kube;
    this.outboundPorts = [...new Set(options.outboundPorts)];
    this.statuses = new Controller({
      name: 'kubelet-pod-status',
      reconcile: (key) => this.writeStatus(key),
      workers: 4,
      backoff: { baseDelayMs: 100, maxDelayMs: 5000 },
      logger: options.logger,
      registry: options.registry,
    });
  }

  get ports(): readonly number[] {
    return this.outboundPorts;
  }

  log(message: string, fields: Record<string, unknown> = {}): void {
    this.options.logger.info(fields, message);
  }

  start(): void {
    this.statuses.start();
  }

  onPodChange(listener: (pod: PodRuntime) => void): void {
    this.listeners.push(listener);
  }

  /** Somebody deleted the pod's object while it ran (its owner decides what follows). */
  objectDeleted(pod: PodRuntime): boolean {
    const tracked = this.pods.get(podKey(pod.pod));
    return tracked?.runtime === pod && tracked.objectDeleted;
  }

  claimPath(namespace: string, claim: string): string {
    return join(this.options.dir, 'volumes', namespace, claim);
  }

  /** What kube-controller-manager would have done in this namespace (it does not run here). */
  async prepareNamespace(ns: string, serviceAccount: string | undefined): Promise<void> {
    if (!serviceAccount || serviceAccount === 'default') {
      await this.createIfMissing(at(RESOURCES.serviceAccount, ns), {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'default' },
      });
    }
    await this.createIfMissing(at(RESOURCES.configMap, ns), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'kube-root-ca.crt' },
      data: { 'ca.crt': this.options.apiServer.caPem },
    });
  }

  private async createIfMissing(ref: ResourceRef, body: KubeObject): Promise<void> {
    try {
      await this.kube.create(ref, body);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }

  /** The Pod object, bound to this node; what runs is what the apiserver admitted (defaults, the SA token volume). */
  async createPod(body: PodObject): Promise<PodObject> {
    const ns = body.metadata.namespace;
    await this.prepareNamespace(ns, body.spec.serviceAccountName);
    return this.kube.create<PodObject>(at(RESOURCES.pod, ns), { ...body, spec: { ...body.spec, nodeName: this.name } });
  }

  run(pod: PodObject, options: RunOptions = {}): PodRuntime {
    const seq = ++this.seq;
    const { namespace, name } = pod.metadata;
    const key = podKey(pod);
    const apiPort = new URL(this.options.apiServer.url).port;
    const runtime: PodRuntime = new PodRuntime({
      kube: this.kube,
      pod,
      images: { ...this.options.images, ...options.images },
      dir: options.dir ?? join(this.options.dir, options.group ?? 'pods', `${namespace}_${name}_w${seq}`),
      sockDir: join(this.sockRoot, String(seq)),
      logDir: this.options.logDir,
      logPrefix: options.logPrefix ?? `${namespace}_${name}`,
      podIP: randomLoopbackIp(),
      outboundPorts: this.outboundPorts,
      env: {
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: apiPort,
        KUBERNETES_SERVICE_PORT_HTTPS: apiPort,
      },
      probePeriodCapSeconds: this.options.probePeriodCapSeconds,
      backoff: this.options.backoff,
      volumeResyncMs: this.options.volumeResyncMs,
      volumeOwnership: this.options.volumeOwnership,
      onChange: () => this.changed(key, runtime),
      log: (message, fields) => this.log(message, { pod: key, ...fields }),
      claimPath: (claim) => this.claimPath(namespace, claim),
    });
    this.pods.set(key, { runtime, times: new Map(), writing: Promise.resolve(), objectDeleted: false });
    this.log('starting pod', { pod: key });
    runtime.start();
    return runtime;
  }

  private changed(key: string, runtime: PodRuntime): void {
    if (this.pods.get(key)?.runtime !== runtime) return;
    this.statuses.enqueue(key);
    for (const listener of this.listeners) listener(runtime);
  }

  private async writeStatus(key: string): Promise<void> {
    const tracked = this.pods.get(key);
    if (!tracked || tracked.objectDeleted) return;
    tracked.writing = this.patchStatus(key, tracked);
    await tracked.writing;
  }

  private async patchStatus(key: string, tracked: Tracked): Promise<void> {
    const pod = tracked.runtime;
    const next = carryTransitions(pod.status(), { comparable: tracked.written, times: tracked.times });
    if (!next.changed) return;
    const { namespace, name } = pod.pod.metadata;
    try {
      await this.kube.patch({ ...at(RESOURCES.pod, namespace, name), subresource: 'status' }, { status: next.status });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      tracked.objectDeleted = true;
      this.log('pod object deleted', { pod: key });
      for (const listener of this.listeners) listener(pod);
      return;
    }
    tracked.written = next.comparable;
    tracked.times = next.times;
    const containers = pod.containers.map((c) => {
      const state = c.running ? 'running' : (c.reason ?? 'stopped');
      return `${c.spec.name}:${state}${c.started ? ',started' : ''}${c.ready ? ',ready' : ''}${c.restartCount ? `,restarts=${c.restartCount}` : ''}`;
    });
    this.log('pod status', { pod: key, phase: pod.phase, ready: pod.ready, containers: containers.join(' ') });
  }

  async stop(pod: PodRuntime, options: StopOptions = {}): Promise<void> {
    const key = podKey(pod.pod);
    const tracked = this.pods.get(key);
    if (tracked?.runtime === pod) this.pods.delete(key);
    await pod.stop(options.graceMs);
    const ref = at(RESOURCES.pod, pod.pod.metadata.namespace, pod.name);
    const object = options.object ?? 'delete';
    if (object === 'keep') return;
    if (object !== 'delete') {
      // After any write in flight, or it could land last with the phase of a running pod.
      await tracked?.writing.catch(() => undefined);
      await this.kube
        .patch({ ...ref, subresource: 'status' }, { status: { ...pod.status(), phase: object.phase } })
        .catch(() => undefined);
      return;
    }
    const deleted = this.kube.delete(ref, { gracePeriodSeconds: 0 });
    await (options.deleteTimeoutMs ? withTimeout(deleted, options.deleteTimeoutMs) : deleted).catch((error: unknown) =>
      this.log('pod object delete failed', { pod: key, error: String(error) }),
    );
  }

  /** Runs the pod until it ends by itself (Succeeded or Failed) or `giveUp` says so (then Failed). */
  async runToEnd(pod: PodObject, giveUp: () => boolean, options: RunOptions = {}): Promise<'Succeeded' | 'Failed'> {
    const runtime = this.run(pod, options);
    while (!giveUp() && !runtime.closed && runtime.phase !== 'Succeeded' && runtime.phase !== 'Failed')
      await sleep(100);
    const phase = runtime.phase === 'Succeeded' ? 'Succeeded' : 'Failed';
    await this.stop(runtime, { graceMs: 2000, object: { phase } });
    return phase;
  }

  /**
   * A Service: a stable host port in front of the pod socket `backend` names per connection
   * (PodRuntime.inboundSocket); every pod, running ones included, reaches it from now on.
   */
  async openService(backend: () => string | undefined): Promise<ServiceProxy> {
    const proxy = await ServiceProxy.open(backend);
    if (!this.outboundPorts.includes(proxy.port)) {
      this.outboundPorts = [...this.outboundPorts, proxy.port];
      for (const { runtime } of this.pods.values()) {
        runtime.addOutboundPort(proxy.port).catch((error: unknown) =>
          this.log('cannot bridge a new port into a pod', {
            pod: runtime.name,
            port: proxy.port,
            error: String((error as Error)?.message ?? error),
          }),
        );
      }
    }
    return proxy;
  }

  /** After the controllers stopped their pods: whatever still runs stops, and the status manager with it. */
  async shutdown(): Promise<void> {
    await Promise.all(
      [...this.pods.values()].map(({ runtime }) => this.stop(runtime, { graceMs: 2000, object: 'keep' })),
    );
    await this.statuses.stop();
    rmSync(this.sockRoot, { recursive: true, force: true });
  }

  killNow(): void {
    for (const { runtime } of this.pods.values()) runtime.killNow();
  }
}

/** `p`, or a rejection after `ms` (best-effort API calls while the platform may be going away). */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)),
  ]);
}
