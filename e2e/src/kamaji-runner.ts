// The local Kamaji runner. Kamaji needs a kubelet, which cannot run here; this plays Kamaji's part
// (and the kubelet's, and the few kube-controller-manager controllers our product needs) with real
// processes against the platform's management kube-apiserver. The code is laid out the way a
// cluster is:
//   kamaji/       Kamaji: what a TenantControlPlane becomes. TCP types and names (tcp.ts), the
//                 control-plane pod template (template.ts), the rollout rule (rollout.ts), PKI,
//                 DataStore, status (pure where possible, unit-tested), and the controller.
//   kubelet/      the one LocalNode (node.ts) and what runs a pod on it: sandbox and network,
//                 isolation (bwrap, setpriv), env, volumes, probes, pod status, images.
//   controllers/  kube-controller-manager's Deployment, StatefulSet and Job controllers and the
//                 scheduler's binding of bare Pods, all on the shared controller runtime.
// Every controller creates pods through the LocalNode and observes them there; nothing looks at
// what the containers are: any init container, sidecar or volume runs as the Pod spec says.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, createRegistry, KubeClient } from '@kdc/shared';
import { BarePodController } from './controllers/pods.ts';
import { DeploymentController } from './controllers/deployments.ts';
import { JobController } from './controllers/jobs.ts';
import { StatefulSetController } from './controllers/statefulsets.ts';
import type { ControllerContext } from './controllers/watch.ts';
import { TcpController } from './kamaji/controller.ts';
import type { ContainerInfo } from './kubelet/container.ts';
import type { LocalImage } from './kubelet/image.ts';
import { checkSandboxTools } from './kubelet/isolation.ts';
import { LocalNode } from './kubelet/node.ts';
import type { PodRuntime } from './kubelet/pod.ts';
import type { PlatformState } from './platform.ts';
import { waitFor } from './wait.ts';

export type { ContainerInfo } from './kubelet/container.ts';
export { LOCAL_NODE_NAME } from './kubelet/node.ts';
export { PKI_SECRETS, apiServerImage, datastoreCertsSecret, templateHash, type EtcdTarget } from './kamaji/tcp.ts';
export { buildPod, mergeApiServerArgs } from './kamaji/template.ts';

export interface KamajiRunnerOptions {
  /**
   * Image reference -> its entrypoint argv on this host, or an unpacked image (kubelet/image.ts:
   * the container then runs from the image's root filesystem and config). A key without a tag
   * matches every tag of that repository. Kubernetes semantics: `command` replaces the entrypoint (a command named like
   * the entrypoint binary resolves to it), `args` are appended. An image not in the table runs its
   * `command` from the host filesystem (a test's stand-in for a third-party image); without a command the
   * container fails with ErrImagePull. Kamaji's kube-apiserver image is built in.
   */
  images: Record<string, LocalImage>;
  /** Working dir (PKI, volumes, sandbox configs). Default: `<platform dir>/kamaji-runner`. */
  dir?: string;
  /** Container logs `<ns>_<tcp>_<container>.log` and `kamaji-runner.log`. Default: the platform's logDir. */
  logDir?: string;
  /** Watch only these namespaces (several runners on one platform must not share a namespace). Default: all. */
  namespaces?: string[];
  /** Probes run at most this many seconds apart; the failure window (period x threshold) is kept. Default 1. */
  probePeriodCapSeconds?: number;
  /** Container restart backoff: first restart immediate, then initialMs doubling to maxMs. Default 10 s / 300 s (kubelet). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How often Secret/ConfigMap volume contents are re-read (the kubelet syncs them too). Default 5000 ms. */
  volumeResyncMs?: number;
  /** 'kubelet' (default): ownership and modes exactly as a kubelet sets them. 'world-readable': also a+r. */
  volumeOwnership?: 'kubelet' | 'world-readable';
  /** Delete the tenant's etcd keys when its TCP is deleted, as Kamaji's datastore cleanup does. Default true. */
  deleteDataOnDelete?: boolean;
  /** Seconds a control-plane container gets between SIGTERM and SIGKILL when stopped (default: the Pod's terminationGracePeriodSeconds). */
  terminationGraceSeconds?: number;
  /** More host ports pods may reach besides the platform's servers (e.g. a dedicated DataStore etcd). */
  extraOutboundPorts?: number[];
  /** Also run batch/v1 Jobs and single-replica apps/v1 StatefulSets in the watched namespaces (controllers/). Default true. */
  jobs?: boolean;
  /** Also run apps/v1 Deployments in the watched namespaces (controllers/deployments.ts): the chart's controllers. Default false. */
  deployments?: boolean;
  /** Also schedule and run Pods nobody owns (controllers/pods.ts): `helm test`'s. Default false. */
  pods?: boolean;
}

export interface PodInfo {
  namespace: string;
  tcpName: string;
  podName: string;
  /** Pod template hash (kubernetes.version + controlPlane.deployment + networkProfile). */
  hash: string;
  phase: string;
  ready: boolean;
  /** The tenant apiserver on the host: https://127.0.0.1:<hostPort> (stable for the TCP's lifetime in this runner). */
  hostPort: number;
  endpoint: string;
  /** Admin kubeconfig file (the content of the `<tcp>-admin-kubeconfig` Secret). */
  adminKubeconfig: string;
  caPem: string;
  /** containerPort -> host port on 127.0.0.1, for every container and probe port of the pod. */
  ports: Record<number, number>;
  /** Epoch ms when the pod was started, and when it was first Ready. */
  startedAt: number;
  readyAt?: number;
  sandboxPid?: number;
  /** The pod's working dir; volume contents are under `volumes/<name>`. */
  dir: string;
  containers: ContainerInfo[];
  message?: string;
}

export interface KamajiRunner {
  dir: string;
  logFile: string;
  /** The TCP's newest pod (the only one at one replica, outside a rollout). */
  pod(namespace: string, tcpName: string): PodInfo | undefined;
  /** Every pod of the TCP, in start order. */
  pods(namespace: string, tcpName: string): PodInfo[];
  /**
   * Keeps `count` pods of an older template running beside the new ones during a rollout (as a
   * stuck or slow Kamaji rollout would); 0 lifts it and the rollout finishes.
   */
  holdBack(namespace: string, tcpName: string, count: number): void;
  /** Waits for a pod of the TCP: ready (default true), with hash / other than notHash. */
  waitForPod(
    namespace: string,
    tcpName: string,
    options?: { ready?: boolean; hash?: string; notHash?: string; timeoutMs?: number },
  ): Promise<PodInfo>;
  /** Waits until the TCP has no pod (deleted, or never started) and, after a deletion, its objects are cleaned up. */
  waitForNoPod(namespace: string, tcpName: string, timeoutMs?: number): Promise<void>;
  /** The last reconcile error for the TCP (e.g. the Pod object was refused), if any. */
  lastError(namespace: string, tcpName: string): string | undefined;
  /** A volume's host dir in the TCP's running pod. */
  volumePath(namespace: string, tcpName: string, volume: string): string | undefined;
  /** The running pods of a Deployment (with `deployments: true`), in start order. */
  deploymentPods(namespace: string, name: string): PodRuntime[];
  /** The stable host port in front of a StatefulSet pod's container port (its "Service"). */
  statefulSetPort(namespace: string, name: string, containerPort: number): number | undefined;
  /** The host dir behind a PersistentVolumeClaim (a StatefulSet's volumeClaimTemplate: `<template>-<sts>-<ordinal>`). */
  claimPath(namespace: string, claim: string): string;
  stop(): Promise<void>;
}

class Runner implements KamajiRunner {
  readonly dir: string;
  readonly logFile: string;
  private readonly options: KamajiRunnerOptions;
  private readonly context: ControllerContext;
  private readonly node: LocalNode;
  private readonly tcps: TcpController;
  private jobs?: JobController;
  private statefulSets?: StatefulSetController;
  private deployments?: DeploymentController;
  private barePods?: BarePodController;
  private stopping = false;

  constructor(state: PlatformState, options: KamajiRunnerOptions) {
    this.options = options;
    this.dir = options.dir ?? join(state.dir, 'kamaji-runner');
    const logDir = options.logDir ?? state.logDir;
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
    this.logFile = join(logDir, 'kamaji-runner.log');
    const logFile = this.logFile;
    const logger = createLogger('kamaji-runner', {}, { write: (line: string) => appendFileSync(logFile, line) });
    const registry = createRegistry(false);
    const kube = KubeClient.fromFile(state.management.kubeconfig);
    const platformPorts = [state.etcd.endpoint, state.management.url, state.openbao.url, state.s3.endpoint]
      .map((u) => Number(new URL(u).port))
      .filter((p) => p > 0);
    this.node = new LocalNode({
      kube,
      logger,
      registry,
      dir: this.dir,
      logDir,
      images: { 'registry.k8s.io/kube-apiserver': [state.binaries['kube-apiserver']], ...options.images },
      apiServer: { url: state.management.url, caPem: state.management.caPem },
      outboundPorts: [...platformPorts, ...(options.extraOutboundPorts ?? [])],
      probePeriodCapSeconds: options.probePeriodCapSeconds ?? 1,
      backoff: { initialMs: options.backoff?.initialMs ?? 10_000, maxMs: options.backoff?.maxMs ?? 300_000 },
      volumeResyncMs: options.volumeResyncMs ?? 5000,
      volumeOwnership: options.volumeOwnership ?? 'kubelet',
    });
    this.context = { kube, node: this.node, namespaces: options.namespaces ?? [undefined], logger, registry };
    this.tcps = new TcpController(this.context, {
      dir: this.dir,
      etcdEndpoint: state.etcd.endpoint,
      apiServerBinary: state.binaries['kube-apiserver'],
      terminationGraceSeconds: options.terminationGraceSeconds,
      deleteDataOnDelete: options.deleteDataOnDelete ?? true,
    });
  }

  async start(): Promise<void> {
    this.node.start();
    await this.tcps.start();
    if (this.options.jobs ?? true) {
      this.jobs = new JobController(this.context);
      await this.jobs.start();
      this.statefulSets = new StatefulSetController(this.context);
      await this.statefulSets.start();
    }
    if (this.options.deployments) {
      this.deployments = new DeploymentController(this.context);
      await this.deployments.start();
    }
    if (this.options.pods) {
      this.barePods = new BarePodController(this.context);
      await this.barePods.start();
    }
    this.node.log('runner started', { namespaces: this.options.namespaces ?? 'all', outboundPorts: this.node.ports });
  }

  pod(namespace: string, tcpName: string): PodInfo | undefined {
    return this.pods(namespace, tcpName).at(-1);
  }

  pods(namespace: string, tcpName: string): PodInfo[] {
    const s = this.tcps.state(namespace, tcpName);
    if (!s?.pki) return [];
    const pki = s.pki;
    return s.replicas.map(({ pod, hash, dir }) => ({
      namespace,
      tcpName,
      podName: pod.name,
      hash,
      phase: pod.phase,
      ready: pod.ready,
      hostPort: s.service.port,
      endpoint: `https://127.0.0.1:${s.service.port}`,
      adminKubeconfig: s.adminKubeconfig,
      caPem: pki.caPem,
      ports: Object.fromEntries(pod.hostPorts),
      startedAt: pod.startedAt,
      readyAt: pod.readyAt,
      sandboxPid: pod.sandboxPid,
      dir,
      containers: pod.containers.map((c) => c.info()),
      message: pod.podMessage,
    }));
  }

  holdBack(namespace: string, tcpName: string, count: number): void {
    const key = `${namespace}/${tcpName}`;
    this.tcps
      .holdBack(key, count)
      .catch((error: unknown) => this.node.log('cannot track TCP', { tcp: key, error: String(error) }));
  }

  volumePath(namespace: string, tcpName: string, volume: string): string | undefined {
    return this.tcps.state(namespace, tcpName)?.replicas.at(-1)?.pod.volumePath(volume);
  }

  lastError(namespace: string, tcpName: string): string | undefined {
    return this.tcps.state(namespace, tcpName)?.error;
  }

  waitForPod(
    namespace: string,
    tcpName: string,
    options: { ready?: boolean; hash?: string; notHash?: string; timeoutMs?: number } = {},
  ): Promise<PodInfo> {
    const ready = options.ready ?? true;
    return waitFor(
      `pod of TenantControlPlane ${namespace}/${tcpName}${ready ? ' to be Ready' : ''}`,
      async () => {
        const info = this.pod(namespace, tcpName);
        if (!info) {
          const error = this.lastError(namespace, tcpName);
          if (error) throw new Error(error);
          return undefined;
        }
        if (options.hash && info.hash !== options.hash) return undefined;
        if (options.notHash && info.hash === options.notHash) return undefined;
        if (ready && !info.ready) {
          const waiting = info.containers
            .filter((c) => !c.ready && c.kind !== 'init')
            .map((c) => `${c.name}${c.reason ? ` (${c.reason}${c.message ? `: ${c.message}` : ''})` : ''}`);
          throw new Error(`not ready: ${waiting.join(', ')}${info.message ? `; ${info.message}` : ''}`);
        }
        return info;
      },
      { timeoutMs: options.timeoutMs ?? 60_000, intervalMs: 100 },
    );
  }

  waitForNoPod(namespace: string, tcpName: string, timeoutMs = 30_000): Promise<void> {
    return waitFor(
      `no pod for TenantControlPlane ${namespace}/${tcpName}`,
      async () => {
        const s = this.tcps.state(namespace, tcpName);
        return !s || (!s.replicas.length && !s.tearingDown);
      },
      { timeoutMs, intervalMs: 100 },
    ).then(() => undefined);
  }

  deploymentPods(namespace: string, name: string): PodRuntime[] {
    return this.deployments?.pods(namespace, name) ?? [];
  }

  statefulSetPort(namespace: string, name: string, containerPort: number): number | undefined {
    return this.statefulSets?.servicePort(namespace, name, containerPort);
  }

  claimPath(namespace: string, claim: string): string {
    return this.node.claimPath(namespace, claim);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.tcps.stopWatching();
    await this.barePods?.stop();
    await this.deployments?.stop();
    await this.jobs?.stop();
    await this.statefulSets?.stop();
    await this.tcps.shutdown();
    await this.node.shutdown();
    this.node.log('runner stopped');
  }

  killNow(): void {
    this.node.killNow();
  }
}

/**
 * Starts the runner: watches TenantControlPlanes on the platform's management apiserver and runs
 * `replicas` pods per TCP, rolled like Kamaji's Deployment (kamaji/rollout.ts). Fails
 * loudly when bwrap, nsenter or setpriv are missing.
 */
export async function startKamajiRunner(state: PlatformState, options: KamajiRunnerOptions): Promise<KamajiRunner> {
  checkSandboxTools();
  const runner = new Runner(state, options);
  try {
    await runner.start();
  } catch (error) {
    runner.killNow();
    await runner.stop().catch(() => undefined);
    throw error;
  }
  return runner;
}
