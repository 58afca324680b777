// One admitted Pod run with real processes, as a kubelet's pod worker runs it. Nothing here
// knows what the containers are: it executes the Pod spec generically (init containers, native
// sidecars, containers, volumes, probes, security context, restart policy).
//
// Pod = network-namespace sandbox (network.ts) + one
// `nsenter --net=<sandbox> -- bwrap --bind / / ... -- setpriv ... <argv>` per container
// (isolation.ts), so every container shares the pod network and sees only its own volumeMounts.
import { join } from 'node:path';
import type { KubeClient } from '@kdc/shared';
import { tailFile } from '../process.ts';
import { sleep } from '../wait.ts';
import { ContainerState, restartDelay, stopContainer } from './container.ts';
import { ContainerLauncher } from './container-process.ts';
import type { LocalImage } from './image.ts';
import { fsUser } from './isolation.ts';
import { PodNetwork } from './network.ts';
import { isSidecar, podPorts, type PodObject } from './pod-spec.ts';
import { podStatus, type PodPhase, type PodStatus } from './pod-status.ts';
import type { ProbeHost } from './probes.ts';
import { PodVolumes } from './volumes.ts';

export type { ContainerInfo } from './container.ts';

export interface PodRuntimeOptions {
  kube: KubeClient;
  pod: PodObject;
  /** Image reference (exact, or repository without tag matching every tag) -> entrypoint argv on this host, or an unpacked image. */
  images: Record<string, LocalImage>;
  dir: string;
  sockDir: string;
  logDir: string;
  /** Log file names: `<logPrefix>_<container>.log`. */
  logPrefix: string;
  /** Host loopback ports the pod must reach (platform services); bridged to the same port inside. */
  outboundPorts: number[];
  /** Extra env for every container (e.g. KUBERNETES_SERVICE_HOST). */
  env: Record<string, string>;
  /** The pod's own loopback IP, where every container port is served under its own number. */
  podIP: string;
  probePeriodCapSeconds: number;
  backoff: { initialMs: number; maxMs: number };
  volumeResyncMs: number;
  volumeOwnership: 'kubelet' | 'world-readable';
  onChange: () => void;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** The host dir behind a PersistentVolumeClaim of the pod's namespace (the node's local volumes). */
  claimPath?: (claimName: string) => string;
}

export class PodRuntime {
  readonly pod: PodObject;
  readonly containers: ContainerState[];
  readonly startedAt = Date.now();
  readyAt?: number;
  phase: PodPhase = 'Pending';
  podMessage?: string;
  private readonly options: PodRuntimeOptions;
  private readonly network: PodNetwork;
  private readonly volumes: PodVolumes;
  private stopping = false;
  private stopped?: Promise<void>;
  private running?: Promise<void>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private initialized = false;
  private readonly supervisors = new Set<Promise<void>>();
  private readonly launcher: ContainerLauncher;

  constructor(options: PodRuntimeOptions) {
    this.options = options;
    this.pod = options.pod;
    const logFile = (name: string) => join(options.logDir, `${options.logPrefix}_${name}.log`);
    this.containers = [
      ...(this.pod.spec.initContainers ?? []).map(
        (c) => new ContainerState(c, isSidecar(c) ? 'sidecar' : 'init', logFile(c.name)),
      ),
      ...this.pod.spec.containers.map((c) => new ContainerState(c, 'container', logFile(c.name))),
    ];
    this.network = new PodNetwork({
      podName: this.name,
      podIP: options.podIP,
      ports: podPorts(this.pod.spec),
      outboundPorts: options.outboundPorts,
      sockDir: options.sockDir,
      dir: options.dir,
      logFile: logFile('POD'),
      closed: () => this.stopping,
    });
    this.volumes = new PodVolumes({
      kube: options.kube,
      pod: this.pod,
      dir: options.dir,
      podIP: options.podIP,
      fsUser: () => fsUser(this.pod.spec, options.images),
      ownership: options.volumeOwnership,
      claimPath: options.claimPath,
      log: options.log,
    });
    const probes: ProbeHost = {
      name: this.name,
      stopping: () => this.stopping,
      probePeriodCapSeconds: options.probePeriodCapSeconds,
      inboundSocket: (port) => this.inboundSocket(port),
      control: (line, timeoutMs) => this.network.control(line, timeoutMs),
      exec: (c, command, timeoutMs) => this.launcher.exec(c, command, timeoutMs),
      changed: () => {
        if (this.ready && !this.readyAt) this.readyAt = Date.now();
        this.options.onChange();
      },
      kill: (c) => void this.stopContainer(c),
      log: (message, fields) => this.options.log(message, fields),
    };
    this.launcher = new ContainerLauncher({
      kube: options.kube,
      pod: this.pod,
      images: options.images,
      podDir: options.dir,
      podIP: options.podIP,
      nodeEnv: options.env,
      volumes: this.volumes,
      probes,
      sandboxPid: () => this.network.sandboxPid,
      stopping: () => this.stopping,
      sleepUnlessStopped: (ms) => this.sleepUnlessStopped(ms),
      changed: () => this.options.onChange(),
      log: (message, fields) => this.options.log(message, fields),
    });
  }

  /** Stopping or stopped: the node forgets it. */
  get closed(): boolean {
    return this.stopping;
  }

  get name(): string {
    return this.pod.metadata.name;
  }

  get ready(): boolean {
    return this.phase === 'Running' && this.containers.every((c) => c.kind === 'init' || c.ready);
  }

  get sandboxPid(): number | undefined {
    return this.network.sandboxPid;
  }

  /** Container port -> host port (127.0.0.1). */
  get hostPorts(): ReadonlyMap<number, number> {
    return this.network.hostPorts;
  }

  container(name: string): ContainerState | undefined {
    return this.containers.find((c) => c.spec.name === name);
  }

  volumePath(name: string): string | undefined {
    return this.volumes.get(name)?.path;
  }

  inboundSocket(port: number): string {
    return this.network.inboundSocket(port);
  }

  /** See PodNetwork.addOutboundPort. */
  addOutboundPort(port: number): Promise<void> {
    return this.network.addOutboundPort(port);
  }

  start(): void {
    this.running = this.run().catch((error: unknown) => {
      if (this.stopping) return;
      this.phase = 'Failed';
      this.podMessage = String((error as Error)?.message ?? error);
      this.options.log('pod failed', { pod: this.name, error: this.podMessage });
      this.options.onChange();
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------------

  private async run(): Promise<void> {
    await this.network.start();
    this.options.onChange();
    // A kubelet recreates a pod whose sandbox died; report it so its controller replaces the pod.
    const watchSandbox = setInterval(() => {
      if (this.stopping || this.network.running) return;
      clearInterval(watchSandbox);
      this.phase = 'Failed';
      this.podMessage = 'pod sandbox exited';
      this.options.log('pod sandbox exited', { pod: this.name });
      this.options.onChange();
    }, 500);
    this.timers.add(watchSandbox);
    await this.retryUntilStopped('volumes', () => this.volumes.materialize());
    this.scheduleResync();

    for (const c of this.containers.filter((x) => x.kind !== 'container')) {
      if (this.stopping) return;
      if (c.kind === 'init') {
        await this.runInitContainer(c);
      } else {
        this.supervise(c);
        await this.until(() => c.started);
      }
    }
    if (this.stopping) return;
    this.initialized = true;
    this.phase = 'Running';
    const main = this.containers.filter((x) => x.kind === 'container');
    const policy = this.pod.spec.restartPolicy ?? 'Always';
    if (policy === 'Always') {
      for (const c of main) this.supervise(c);
      this.options.onChange();
      return;
    }
    this.options.onChange();
    // A Job's pod: every main container runs to completion; the pod's phase is the outcome.
    const results = await Promise.all(main.map((c) => this.runToCompletion(c, policy)));
    if (this.stopping) return;
    this.phase = results.every((code) => code === 0) ? 'Succeeded' : 'Failed';
    if (this.phase === 'Failed')
      this.podMessage = `containers exited with ${main.map((c, i) => `${c.spec.name}=${results[i]}`).join(', ')}`;
    // Sidecars end with the pod, as a kubelet stops them after the main containers completed.
    for (const c of this.containers.filter((x) => x.kind === 'sidecar')) c.process?.killNow();
    this.options.onChange();
  }

  private async runToCompletion(c: ContainerState, policy: 'OnFailure' | 'Never'): Promise<number | null> {
    while (!this.stopping) {
      await this.backoff(c);
      if (this.stopping) break;
      const result = await this.launcher.runOnce(c);
      if (result === 'not-started') continue;
      if (result === 0 || policy === 'Never') return result;
      c.restartCount++;
      c.reason = 'CrashLoopBackOff';
      this.options.onChange();
    }
    return null;
  }

  private async until(condition: () => boolean): Promise<void> {
    while (!condition() && !this.stopping) await sleep(50);
  }

  private async retryUntilStopped(what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        await fn();
        this.podMessage = undefined;
        return;
      } catch (error) {
        this.podMessage = `${what}: ${(error as Error).message}`;
        for (const c of this.containers) if (!c.running) c.reason = 'ContainerCreating';
        this.options.log('pod setup failed; retrying', { pod: this.name, what, error: this.podMessage });
        this.options.onChange();
        await this.sleepUnlessStopped(Math.min(1000 * 2 ** attempt, 10_000));
      }
    }
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!this.stopping && Date.now() < end) await sleep(Math.min(100, end - Date.now()));
  }

  private async runInitContainer(c: ContainerState): Promise<void> {
    for (;;) {
      await this.backoff(c);
      if (this.stopping) return;
      const result = await this.launcher.runOnce(c);
      if (this.stopping || result === 0) return;
      if (result !== 'not-started') c.restartCount++;
      c.reason = result === 'not-started' ? c.reason : 'CrashLoopBackOff';
      this.options.onChange();
    }
  }

  private supervise(c: ContainerState): void {
    const loop = (async () => {
      while (!this.stopping) {
        await this.backoff(c);
        if (this.stopping) return;
        const result = await this.launcher.runOnce(c);
        if (this.stopping) return;
        if (result !== 'not-started') {
          c.restartCount++;
          c.reason = 'CrashLoopBackOff';
        }
        this.options.onChange();
      }
    })().catch((error: unknown) =>
      this.options.log('container supervisor failed', {
        pod: this.name,
        container: c.spec.name,
        error: String((error as Error)?.message ?? error),
      }),
    );
    this.supervisors.add(loop);
  }

  private async backoff(c: ContainerState): Promise<void> {
    const delay = restartDelay(c, this.options.backoff);
    if (!delay) return;
    c.message = `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.spec.name} pod=${this.name}`;
    await this.sleepUnlessStopped(delay);
  }

  private scheduleResync(): void {
    const timer = setInterval(() => {
      if (this.stopping) return;
      this.volumes
        .materialize()
        .catch((error: unknown) =>
          this.options.log('volume resync failed', { pod: this.name, error: String((error as Error).message) }),
        );
    }, this.options.volumeResyncMs);
    this.timers.add(timer);
  }

  // ---- stopping ----------------------------------------------------------------------------------

  private stopContainer(c: ContainerState, graceMs = (this.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000) {
    return stopContainer(c, graceMs);
  }

  /** Stops like a kubelet: containers first, then sidecars in reverse order, then the sandbox. */
  stop(graceMs?: number): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      for (const t of this.timers) clearInterval(t);
      await Promise.all(
        this.containers.filter((c) => c.kind === 'container').map((c) => this.stopContainer(c, graceMs)),
      );
      for (const c of [...this.containers].reverse().filter((x) => x.kind !== 'container'))
        await this.stopContainer(c, graceMs);
      await this.running;
      await Promise.all(this.supervisors);
      // Anything that was starting while we stopped.
      for (const c of this.containers) await this.stopContainer(c, 0);
      await this.network.close();
      this.options.onChange();
    })();
    return this.stopped;
  }

  /** Kills everything at once (runner shutdown on errors). */
  killNow(): void {
    this.stopping = true;
    for (const c of this.containers) c.process?.killNow();
    this.network.killNow();
  }

  /** The Pod's status as a kubelet would report it. */
  status(): PodStatus {
    return podStatus({
      phase: this.phase,
      message: this.podMessage,
      containers: this.containers,
      sandboxReady: this.network.ready,
      initialized: this.initialized,
      podIP: this.options.podIP,
      startedAt: this.startedAt,
      qosClass: this.pod.status?.qosClass,
    });
  }

  tail(container: string, lines = 40): string {
    const c = this.container(container);
    return c ? tailFile(c.logFile, lines) : `(no container ${container})`;
  }
}
