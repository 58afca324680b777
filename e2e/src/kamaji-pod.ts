// The kubelet half of the local Kamaji runner (kamaji-runner.ts): runs one admitted Pod object
// with real processes. Nothing here knows what the containers are: it executes the Pod spec
// generically (init containers, native sidecars, containers, volumes, probes, security context).
//
// Pod = network-namespace sandbox (kamaji-sandbox.ts under `bwrap --unshare-net`) + one
// `nsenter --net=<sandbox> -- bwrap --bind / / ... -- setpriv ... <argv>` per container, so every
// container shares the pod network and sees only its own volumeMounts at the container paths.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORE, type KubeClient, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { freePort } from './ports.ts';
import { ManagedProcess, tailFile } from './process.ts';
import { sleep } from './wait.ts';
import {
  isOciImage,
  ociArgv,
  ociEnv,
  ociRootArgs,
  ociSetpriv,
  ociUser,
  rootfsFor,
  writeHostsFile,
  type LocalImage,
} from './kamaji-image.ts';

const SANDBOX_MAIN = fileURLToPath(new URL('./kamaji-sandbox.ts', import.meta.url));

// ---------------------------------------------------------------------------------------------
// The Pod API subset we read (loose: unknown fields are ignored, never an error).

export interface ProbeSpec {
  httpGet?: {
    path?: string;
    port: number | string;
    host?: string;
    scheme?: string;
    httpHeaders?: { name: string; value: string }[];
  };
  tcpSocket?: { port: number | string };
  exec?: { command?: string[] };
  grpc?: { port: number };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface SecurityContextSpec {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface PodSecurityContextSpec {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  fsGroup?: number;
  supplementalGroups?: number[];
}

export interface VolumeMountSpec {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

type Selector = { name?: string; key: string; optional?: boolean };
export interface EnvVarSpec {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: Selector;
    configMapKeyRef?: Selector;
    resourceFieldRef?: unknown;
  };
}

export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVarSpec[];
  envFrom?: {
    prefix?: string;
    secretRef?: { name: string; optional?: boolean };
    configMapRef?: { name: string; optional?: boolean };
  }[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  volumeMounts?: VolumeMountSpec[];
  restartPolicy?: string;
  startupProbe?: ProbeSpec;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  securityContext?: SecurityContextSpec;
}

type KeyToPath = { key: string; path: string; mode?: number };
type DownwardItem = { path: string; fieldRef?: { fieldPath: string }; mode?: number };
export interface VolumeSpec {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  hostPath?: { path: string; type?: string };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  secret?: { secretName?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  configMap?: { name?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  downwardAPI?: { items?: DownwardItem[]; defaultMode?: number };
  projected?: {
    defaultMode?: number;
    sources?: {
      secret?: { name?: string; items?: KeyToPath[]; optional?: boolean };
      configMap?: { name?: string; items?: KeyToPath[]; optional?: boolean };
      downwardAPI?: { items?: DownwardItem[] };
      serviceAccountToken?: { audience?: string; expirationSeconds?: number; path: string };
    }[];
  };
  [other: string]: unknown;
}

export interface PodSpecLite {
  nodeName?: string;
  serviceAccountName?: string;
  initContainers?: ContainerSpec[];
  containers: ContainerSpec[];
  volumes?: VolumeSpec[];
  securityContext?: PodSecurityContextSpec;
  terminationGracePeriodSeconds?: number;
  /** Always (default): main containers are restarted; Never / OnFailure: the pod runs to completion (Jobs). */
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
}

export interface PodObject extends KubeObject {
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: PodSpecLite;
}

// ---------------------------------------------------------------------------------------------

export type ContainerKind = 'init' | 'sidecar' | 'container';

export interface ContainerInfo {
  name: string;
  kind: ContainerKind;
  /** The container's main process (what `kill <pid>` in a real container's PID 1 would be). */
  pid?: number;
  running: boolean;
  started: boolean;
  ready: boolean;
  restartCount: number;
  /** Exit code of the last finished run (null: killed by a signal). */
  lastExitCode?: number | null;
  /** Why it is not running (ContainerCreating, CrashLoopBackOff, ErrImagePull, ...). */
  reason?: string;
  message?: string;
  logFile: string;
}

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
  /**
   * The pod's IP on the host: a loopback address of its own (all of 127/8 reaches lo), where
   * every container port is served under its own number, as a pod IP is reachable in a cluster.
   */
  podIP: string;
  probePeriodCapSeconds: number;
  backoff: { initialMs: number; maxMs: number };
  volumeResyncMs: number;
  volumeOwnership: 'kubelet' | 'world-readable';
  onChange: () => void;
  log: (message: string, fields?: Record<string, unknown>) => void;
  /** The host dir behind a PersistentVolumeClaim of the pod's namespace (the runner's local volumes). */
  claimPath?: (claimName: string) => string;
}

const DEFAULT_CAPS = [
  'chown',
  'dac_override',
  'fowner',
  'fsetid',
  'kill',
  'setgid',
  'setuid',
  'setpcap',
  'net_bind_service',
  'net_raw',
  'sys_chroot',
  'mknod',
  'audit_write',
  'setfcap',
];

/** Resolves a path through the host's existing symlinks (/var/run -> /run) before bwrap mounts there. */
export function resolveHostPath(path: string): string {
  let existing = path;
  const rest: string[] = [];
  while (!existsSync(existing) && existing !== '/') {
    rest.unshift(basename(existing));
    existing = dirname(existing);
  }
  return join(realpathSync(existing), ...rest);
}

/**
 * Creates a missing mount point on the host (bwrap binds onto the host's `/`) the way an image
 * would have it: directories 0755, so non-root containers can traverse to their mounts.
 */
export function ensureMountPoint(dest: string, directory: boolean): void {
  if (existsSync(dest)) return;
  const missing: string[] = [];
  for (let p = directory ? dest : dirname(dest); !existsSync(p); p = dirname(p)) missing.unshift(p);
  for (const dir of missing) {
    mkdirSync(dir);
    chmodSync(dir, 0o755);
  }
  if (!directory) writeFileSync(dest, '', { mode: 0o644 });
}

/**
 * What runs for an image reference: the entry for the exact reference, else for it without its
 * digest, else for its repository (every tag). A reference pinned to a digest never runs an
 * image of another digest, as a registry would not serve one.
 */
export function localImage(images: Record<string, LocalImage>, image: string | undefined): LocalImage | undefined {
  if (!image) return undefined;
  const [reference, digest] = image.split('@') as [string, string | undefined];
  const found = images[image] ?? images[reference] ?? images[reference.replace(/:[^:/]*$/, '')];
  if (digest && isOciImage(found) && found.digest && found.digest !== digest) {
    throw new Error(`image ${image}: the local image ${reference} has digest ${found.digest}, not ${digest}`);
  }
  return found;
}

/** `$(VAR)` expansion of command, args and env values, as the kubelet does; `$$(` escapes. */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : whole;
  });
}

const isSidecar = (c: ContainerSpec) => c.restartPolicy === 'Always';

class ContainerState {
  readonly spec: ContainerSpec;
  readonly kind: ContainerKind;
  readonly logFile: string;
  process?: ManagedProcess;
  pid?: number;
  running = false;
  started = false;
  ready = false;
  startupDone = false;
  restartCount = 0;
  lastExitCode?: number | null;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  lastTerminated?: { exitCode: number; reason: string; startedAt?: string; finishedAt?: string };
  /** Bumped on every start; probe loops of an older run stop. */
  generation = 0;

  constructor(spec: ContainerSpec, kind: ContainerKind, logFile: string) {
    this.spec = spec;
    this.kind = kind;
    this.logFile = logFile;
  }

  info(): ContainerInfo {
    return {
      name: this.spec.name,
      kind: this.kind,
      pid: this.running ? this.pid : undefined,
      running: this.running,
      started: this.started,
      ready: this.ready,
      restartCount: this.restartCount,
      lastExitCode: this.lastExitCode,
      reason: this.reason,
      message: this.message,
      logFile: this.logFile,
    };
  }
}

interface FileProjection {
  data: Buffer;
  mode: number;
  uid?: number;
}

interface MaterializedVolume {
  spec: VolumeSpec;
  path: string;
  /** Tokens: refresh when past this time (ms). */
  refreshAt?: number;
  tokens: Map<string, { token: string; refreshAt: number }>;
  readOnly: boolean;
}

export class PodRuntime {
  readonly pod: PodObject;
  readonly containers: ContainerState[];
  readonly startedAt = Date.now();
  readyAt?: number;
  sandboxPid?: number;
  /** Container port -> host port (127.0.0.1). */
  readonly hostPorts = new Map<number, number>();
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' = 'Pending';
  podMessage?: string;
  private readonly options: PodRuntimeOptions;
  private readonly volumes = new Map<string, MaterializedVolume>();
  private sandbox?: ManagedProcess;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private stopping = false;
  private stopped?: Promise<void>;
  private running?: Promise<void>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private sandboxReady = false;
  private initialized = false;
  private readonly warned = new Set<string>();
  private readonly cache = new Map<string, KubeObject | null>();
  private readonly supervisors = new Set<Promise<void>>();
  /** Host ports bridged into the pod; undefined items are still to be sent to a sandbox being set up. */
  private readonly outbound: Set<number>;
  private sandboxConfigured = false;

  constructor(options: PodRuntimeOptions) {
    this.options = options;
    this.outbound = new Set(options.outboundPorts);
    this.pod = options.pod;
    const logFile = (name: string) => join(options.logDir, `${options.logPrefix}_${name}.log`);
    this.containers = [
      ...(this.pod.spec.initContainers ?? []).map(
        (c) => new ContainerState(c, isSidecar(c) ? 'sidecar' : 'init', logFile(c.name)),
      ),
      ...this.pod.spec.containers.map((c) => new ContainerState(c, 'container', logFile(c.name))),
    ];
    mkdirSync(join(options.dir, 'volumes'), { recursive: true });
  }

  /** Stopping or stopped: the runner forgets it. */
  get closed(): boolean {
    return this.stopping;
  }

  get name(): string {
    return this.pod.metadata.name;
  }

  get ready(): boolean {
    return this.phase === 'Running' && this.containers.every((c) => c.kind === 'init' || c.ready);
  }

  container(name: string): ContainerState | undefined {
    return this.containers.find((c) => c.spec.name === name);
  }

  volumePath(name: string): string | undefined {
    return this.volumes.get(name)?.path;
  }

  inboundSocket(port: number): string {
    return join(this.options.sockDir, `i${port}`);
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
    await this.startSandbox();
    this.sandboxReady = true;
    this.options.onChange();
    // A kubelet recreates a pod whose sandbox died; report it so the runner replaces the pod.
    const watchSandbox = setInterval(() => {
      if (this.stopping || this.sandbox?.running) return;
      clearInterval(watchSandbox);
      this.phase = 'Failed';
      this.podMessage = 'pod sandbox exited';
      this.options.log('pod sandbox exited', { pod: this.name });
      this.options.onChange();
    }, 500);
    this.timers.add(watchSandbox);
    await this.retryUntilStopped('volumes', () => this.materializeVolumes());
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
      const result = await this.runOnce(c);
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
      const result = await this.runOnce(c);
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
        const result = await this.runOnce(c);
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

  /** Kubelet-like restart backoff: the first restart is immediate, then initial * 2^n up to max. */
  private async backoff(c: ContainerState): Promise<void> {
    if (c.restartCount === 0) return;
    const ranLong =
      c.startedAt &&
      c.finishedAt &&
      Date.parse(c.finishedAt) - Date.parse(c.startedAt) > 2 * this.options.backoff.maxMs;
    if (ranLong || c.restartCount === 1) return;
    const delay = Math.min(this.options.backoff.initialMs * 2 ** (c.restartCount - 2), this.options.backoff.maxMs);
    c.message = `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.spec.name} pod=${this.name}`;
    await this.sleepUnlessStopped(delay);
  }

  /** Starts the container and resolves with its exit code once it has exited ('not-started': config error). */
  private async runOnce(c: ContainerState): Promise<number | null | 'not-started'> {
    let argv: string[];
    let env: Record<string, string>;
    let args: string[];
    try {
      ({ argv, env } = await this.containerCommand(c));
      args = [`--net=/proc/${this.sandboxPid}/ns/net`, '--', 'bwrap', ...this.bwrapArgs(c), '--', ...argv];
    } catch (error) {
      const e = error as Error & { reason?: string };
      const reason = e.reason ?? 'CreateContainerConfigError';
      if (c.reason !== reason || c.message !== e.message) {
        appendFileSync(
          c.logFile,
          `[kamaji-runner] ${new Date().toISOString()} cannot start ${c.spec.name}: ${reason}: ${e.message}\n`,
        );
        this.options.log('cannot start container', {
          pod: this.name,
          container: c.spec.name,
          reason,
          error: e.message,
        });
      }
      c.reason = reason;
      c.message = e.message;
      this.options.onChange();
      await this.sleepUnlessStopped(2000);
      return 'not-started';
    }
    if (this.stopping) return 'not-started';
    const generation = ++c.generation;
    appendFileSync(
      c.logFile,
      `[kamaji-runner] ${new Date().toISOString()} starting ${c.spec.name} (restart ${c.restartCount}): ${JSON.stringify(argv)}\n`,
    );
    const proc = ManagedProcess.start({
      name: `${this.name}/${c.spec.name}`,
      binary: 'nsenter',
      args,
      logFile: c.logFile,
      env,
    });
    c.process = proc;
    c.pid = await this.mainPid(proc);
    c.running = true;
    c.reason = undefined;
    c.message = undefined;
    c.startedAt = new Date().toISOString();
    c.ready = false;
    c.startupDone = !c.spec.startupProbe;
    c.started = c.startupDone;
    this.warnUnreadable(c);
    this.options.onChange();
    this.startProbes(c, generation);
    while (proc.running) await sleep(50);
    c.generation++;
    c.running = false;
    c.started = false;
    c.ready = false;
    c.finishedAt = new Date().toISOString();
    c.lastExitCode = proc.code;
    const exitCode = proc.code ?? 137;
    c.lastTerminated = {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
    };
    appendFileSync(c.logFile, `[kamaji-runner] ${c.finishedAt} ${c.spec.name} exited with ${proc.code}\n`);
    this.options.onChange();
    return proc.code ?? null;
  }

  /** The process bwrap runs for the container (bwrap forks it; nsenter and setpriv exec). */
  private async mainPid(proc: ManagedProcess): Promise<number> {
    for (let i = 0; i < 200 && proc.running; i++) {
      try {
        const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim();
        if (children) return Number(children.split(/\s+/)[0]);
      } catch {
        // not yet bwrap, or gone
      }
      await sleep(10);
    }
    return proc.pid;
  }

  private securityOf(c: ContainerState) {
    const pod = this.pod.spec.securityContext ?? {};
    const sc = c.spec.securityContext ?? {};
    // Unset in the pod spec: the image's USER, as a kubelet takes it.
    const image = localImage(this.options.images, c.spec.image);
    const fromImage = isOciImage(image) ? ociUser(image) : {};
    return {
      uid: sc.runAsUser ?? pod.runAsUser ?? fromImage.uid,
      gid: sc.runAsGroup ?? pod.runAsGroup ?? fromImage.gid,
      runAsNonRoot: sc.runAsNonRoot ?? pod.runAsNonRoot,
      groups: [...new Set([...(pod.fsGroup !== undefined ? [pod.fsGroup] : []), ...(pod.supplementalGroups ?? [])])],
      sc,
    };
  }

  private setprivArgs(c: ContainerState): string[] {
    const { uid, gid, groups, sc } = this.securityOf(c);
    const args = isOciImage(localImage(this.options.images, c.spec.image)) ? ociSetpriv() : ['setpriv'];
    if (uid !== undefined) args.push(`--reuid=${uid}`);
    if (uid !== undefined || gid !== undefined) args.push(`--regid=${gid ?? 0}`);
    args.push(groups.length ? `--groups=${groups.join(',')}` : '--clear-groups');
    if (sc.allowPrivilegeEscalation === false) args.push('--no-new-privs');
    if (!sc.privileged) {
      const norm = (cap: string) => cap.toLowerCase().replace(/^cap_/, '');
      const drop = (sc.capabilities?.drop ?? []).map(norm);
      let caps = drop.includes('all') ? [] : DEFAULT_CAPS.filter((cap) => !drop.includes(cap));
      caps = [...new Set([...caps, ...(sc.capabilities?.add ?? []).map(norm)])];
      args.push(`--bounding-set=-all${caps.map((cap) => `,+${cap}`).join('')}`);
    }
    return args;
  }

  /**
   * The container's root and its mounts: the host's `/` for a host-mapped image, the image's own
   * root for an image (kamaji-image.ts). Mount points are made first, 0755 as an image's own dirs
   * are (bwrap would make some 0700 and a non-root container could not pass them).
   */
  private bwrapArgs(c: ContainerState): string[] {
    const image = localImage(this.options.images, c.spec.image);
    const oci = isOciImage(image) ? image : undefined;
    const readOnly = c.spec.securityContext?.readOnlyRootFilesystem === true;
    const root = oci ? rootfsFor(oci, readOnly, join(this.options.dir, 'containers', c.spec.name)) : '/';
    const args = oci
      ? ociRootArgs(
          root,
          writeHostsFile(join(this.options.dir, 'etc-hosts'), this.name, this.options.podIP),
          ensureMountPoint,
        )
      : ['--bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
    const mounts = [...(c.spec.volumeMounts ?? [])].sort(
      (a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length,
    );
    for (const m of mounts) {
      const volume = this.volumes.get(m.name);
      if (!volume) throw new Error(`container ${c.spec.name} mounts unknown volume ${m.name}`);
      let source = volume.path;
      if (m.subPath) {
        source = join(volume.path, m.subPath);
        if (!existsSync(source)) mkdirSync(source, { recursive: true });
        source = realpathSync(source);
      }
      const dest = oci ? m.mountPath : resolveHostPath(m.mountPath);
      ensureMountPoint(oci ? join(root, m.mountPath) : dest, statSync(source).isDirectory());
      args.push(m.readOnly || volume.readOnly ? '--ro-bind' : '--bind', source, dest);
    }
    if (readOnly) args.push('--remount-ro', '/');
    const workingDir = c.spec.workingDir ?? (oci ? (oci.config.WorkingDir ?? '/') : undefined);
    if (workingDir) args.push('--chdir', workingDir);
    args.push('--die-with-parent', '--', ...this.setprivArgs(c));
    return args;
  }

  private async containerCommand(c: ContainerState): Promise<{ argv: string[]; env: Record<string, string> }> {
    const { uid, runAsNonRoot } = this.securityOf(c);
    if (runAsNonRoot && !uid) {
      throw Object.assign(
        new Error(
          uid === 0
            ? "container's runAsUser breaks non-root policy"
            : 'container has runAsNonRoot and image will run as root',
        ),
        { reason: 'CreateContainerConfigError' },
      );
    }
    const entrypoint = localImage(this.options.images, c.spec.image);
    const env = await this.containerEnv(c, uid, isOciImage(entrypoint) ? ociEnv(entrypoint) : undefined);
    const expand = (s: string) => expandVars(s, env);
    const command = (c.spec.command ?? []).map(expand);
    const args = (c.spec.args ?? []).map(expand);
    let argv: string[];
    if (isOciImage(entrypoint)) {
      argv = ociArgv(entrypoint, command, args);
      if (!argv.length)
        throw Object.assign(
          new Error(`image "${c.spec.image}" has no entrypoint or cmd and the container no command`),
          { reason: 'CreateContainerError' },
        );
    } else if (entrypoint) {
      if (command.length) {
        const [first, ...rest] = command;
        argv = [
          !first!.includes('/') && basename(entrypoint[0]!) === first ? entrypoint[0]! : first!,
          ...rest,
          ...args,
        ];
      } else {
        argv = [...entrypoint, ...args];
      }
    } else if (command.length) {
      argv = [...command, ...args];
    } else {
      throw Object.assign(
        new Error(`image "${c.spec.image}" is not in the local runner's image table and the container has no command`),
        { reason: 'ErrImagePull' },
      );
    }
    return { argv, env };
  }

  private async getCached(kind: 'secrets' | 'configmaps', name: string): Promise<KubeObject | null> {
    const key = `${kind}/${name}`;
    if (!this.cache.has(key))
      this.cache.set(key, await this.options.kube.getOrNull(CORE(kind, this.pod.metadata.namespace, name)));
    return this.cache.get(key)!;
  }

  private async keyValue(kind: 'secrets' | 'configmaps', ref: Selector): Promise<string | undefined> {
    const obj = ref.name
      ? ((await this.getCached(kind, ref.name)) as (KubeObject & { data?: Record<string, string> }) | null)
      : null;
    const raw = obj?.data?.[ref.key];
    if (raw === undefined) {
      if (ref.optional) return undefined;
      throw new Error(
        `${kind === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" ${obj ? `has no key "${ref.key}"` : 'not found'}`,
      );
    }
    return kind === 'secrets' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  }

  private fieldValue(fieldPath: string): string {
    const m = this.pod.metadata;
    const label = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
    if (label) return (label[1] === 'labels' ? m.labels : m.annotations)?.[label[2]!] ?? '';
    switch (fieldPath) {
      case 'metadata.name':
        return m.name;
      case 'metadata.namespace':
        return m.namespace;
      case 'metadata.uid':
        return m.uid ?? '';
      case 'metadata.labels':
        return Object.entries(m.labels ?? {})
          .map(([k, v]) => `${k}="${v}"`)
          .join('\n');
      case 'metadata.annotations':
        return Object.entries(m.annotations ?? {})
          .map(([k, v]) => `${k}="${v}"`)
          .join('\n');
      case 'spec.nodeName':
        return this.pod.spec.nodeName ?? '';
      case 'spec.serviceAccountName':
        return this.pod.spec.serviceAccountName ?? 'default';
      case 'status.hostIP':
      case 'status.hostIPs':
        return '127.0.0.1';
      case 'status.podIP':
      case 'status.podIPs':
        return this.options.podIP;
      default:
        throw new Error(`unsupported fieldRef ${fieldPath}`);
    }
  }

  /** imageEnv: the image's env (an image container), else the host's PATH (a host-mapped one). */
  private async containerEnv(
    c: ContainerState,
    uid: number | undefined,
    imageEnv?: Record<string, string>,
  ): Promise<Record<string, string>> {
    this.cache.clear();
    const env: Record<string, string> = {
      ...(imageEnv ?? { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }),
      HOME: uid ? '/' : '/root',
      HOSTNAME: this.name,
      ...this.options.env,
    };
    for (const from of c.spec.envFrom ?? []) {
      const kind = from.secretRef ? 'secrets' : 'configmaps';
      const ref = from.secretRef ?? from.configMapRef;
      if (!ref) continue;
      const obj = (await this.getCached(kind, ref.name)) as (KubeObject & { data?: Record<string, string> }) | null;
      if (!obj && !ref.optional)
        throw new Error(`${kind === 'secrets' ? 'secret' : 'configmap'} "${ref.name}" not found`);
      for (const [k, v] of Object.entries(obj?.data ?? {}))
        env[`${from.prefix ?? ''}${k}`] = kind === 'secrets' ? Buffer.from(v, 'base64').toString('utf8') : v;
    }
    for (const e of c.spec.env ?? []) {
      let value: string | undefined;
      if (e.valueFrom?.fieldRef) value = this.fieldValue(e.valueFrom.fieldRef.fieldPath);
      else if (e.valueFrom?.secretKeyRef) value = await this.keyValue('secrets', e.valueFrom.secretKeyRef);
      else if (e.valueFrom?.configMapKeyRef) value = await this.keyValue('configmaps', e.valueFrom.configMapKeyRef);
      else if (e.valueFrom?.resourceFieldRef) value = '0';
      else value = expandVars(e.value ?? '', env);
      if (value !== undefined) env[e.name] = value;
    }
    return env;
  }

  // ---- sandbox and port bridges -------------------------------------------------------------------

  private podPorts(): number[] {
    const ports = new Set<number>();
    const all = [...(this.pod.spec.initContainers ?? []), ...this.pod.spec.containers];
    for (const c of all) {
      for (const p of c.ports ?? []) if (!p.protocol || p.protocol === 'TCP') ports.add(p.containerPort);
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (port !== undefined) {
          const n = this.resolvePort(c, port);
          if (n) ports.add(n);
        }
      }
    }
    return [...ports];
  }

  private resolvePort(c: ContainerSpec, port: number | string): number | undefined {
    if (typeof port === 'number') return port;
    if (/^\d+$/.test(port)) return Number(port);
    return c.ports?.find((p) => p.name === port)?.containerPort;
  }

  private async startSandbox(): Promise<void> {
    const sock = this.options.sockDir;
    mkdirSync(sock, { recursive: true, mode: 0o700 });
    this.sandboxConfigured = true;
    const outbound = [...this.outbound].map((port) => ({ port, socket: join(sock, `o${port}`) }));
    const inbound = this.podPorts().map((port) => ({ port, socket: this.inboundSocket(port) }));
    for (const { port, socket } of outbound) await this.serveOutbound(port, socket);
    // Every pod port is also reachable from the host on a free loopback port (tests, debugging).
    for (const { port, socket } of inbound) {
      const hostPort = await freePort();
      await this.serve(
        createServer((client) => this.bridge(client, createConnection(socket))),
        { port: hostPort, host: '127.0.0.1' },
      );
      this.hostPorts.set(port, hostPort);
      await this.serve(
        createServer((client) => this.bridge(client, createConnection(socket))),
        { port, host: this.options.podIP },
      );
    }
    const config = {
      podIP: this.options.podIP,
      outbound,
      inbound,
      control: join(sock, 'control'),
      readyFile: join(this.options.dir, 'sandbox.ready'),
    };
    rmSync(config.readyFile, { force: true });
    const configFile = join(this.options.dir, 'sandbox.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    this.sandbox = ManagedProcess.start({
      name: `${this.name}/sandbox`,
      binary: 'bwrap',
      args: [
        '--bind',
        '/',
        '/',
        '--dev',
        '/dev',
        '--proc',
        '/proc',
        '--unshare-net',
        '--die-with-parent',
        '--',
        process.execPath,
        '--conditions=source',
        SANDBOX_MAIN,
        configFile,
      ],
      logFile: join(this.options.logDir, `${this.options.logPrefix}_POD.log`),
    });
    const deadline = Date.now() + 30_000;
    while (!existsSync(config.readyFile)) {
      if (!this.sandbox.running) throw new Error(`pod sandbox exited:\n${this.sandbox.tail()}`);
      if (Date.now() > deadline) throw new Error(`pod sandbox not ready after 30 s:\n${this.sandbox.tail()}`);
      if (this.stopping) return;
      await sleep(20);
    }
    this.sandboxPid = (JSON.parse(readFileSync(config.readyFile, 'utf8')) as { pid: number }).pid;
  }

  /** Host side of an outbound bridge: the runner's network namespace reaches the real service. */
  private async serveOutbound(port: number, socket: string): Promise<void> {
    rmSync(socket, { force: true });
    await this.serve(
      createServer((client) => this.bridge(client, createConnection({ port, host: '127.0.0.1' }))),
      socket,
    );
  }

  /**
   * Lets the pod reach one more host loopback port: a Service that appeared after the pod started
   * (a tenant apiserver, a tenant etcd), as a cluster network reaches new Services at once.
   */
  async addOutboundPort(port: number): Promise<void> {
    if (this.outbound.has(port) || this.stopping) return;
    this.outbound.add(port);
    if (!this.sandboxConfigured) return;
    await this.until(() => this.sandboxReady);
    if (this.stopping) return;
    const socket = join(this.options.sockDir, `o${port}`);
    await this.serveOutbound(port, socket);
    const answer = await controlRequest(join(this.options.sockDir, 'control'), `outbound ${port} ${socket}\n`, 5000);
    if (!answer.startsWith('ok')) throw new Error(`pod ${this.name}: cannot bridge port ${port}: ${answer.trim()}`);
  }

  private bridge(a: Socket, b: Socket): void {
    this.sockets.add(a);
    this.sockets.add(b);
    a.on('close', () => this.sockets.delete(a));
    b.on('close', () => this.sockets.delete(b));
    a.pipe(b);
    b.pipe(a);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  }

  private serve(server: Server, target: string | { port: number; host: string }): Promise<void> {
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      if (typeof target === 'string') server.listen(target, resolve);
      else server.listen(target.port, target.host, resolve);
    });
  }

  // ---- volumes -----------------------------------------------------------------------------------

  private fsUser(): number | undefined {
    // pkg/volume/util FsUserFrom: the runAsUser shared by every container, if they all set one.
    let fsUser: number | undefined;
    for (const c of this.containers) {
      const { uid } = this.securityOf(c);
      if (uid === undefined || (fsUser !== undefined && fsUser !== uid)) return undefined;
      fsUser = uid;
    }
    return fsUser;
  }

  private async materializeVolumes(): Promise<void> {
    const fsGroup = this.pod.spec.securityContext?.fsGroup;
    for (const v of this.pod.spec.volumes ?? []) {
      const existing = this.volumes.get(v.name);
      if (existing) {
        if (existing.spec.emptyDir || existing.spec.hostPath || existing.spec.persistentVolumeClaim) continue;
        await this.writeProjection(existing, fsGroup);
        continue;
      }
      const path = join(this.options.dir, 'volumes', v.name);
      if (v.emptyDir) {
        mkdirSync(path, { recursive: true });
        chmodSync(path, 0o777);
        if (fsGroup !== undefined) {
          chownSync(path, 0, fsGroup);
          chmodSync(path, 0o2777);
        }
        this.volumes.set(v.name, { spec: v, path, tokens: new Map(), readOnly: false });
      } else if (v.hostPath) {
        const type = v.hostPath.type ?? '';
        if (!existsSync(v.hostPath.path)) {
          if (type === 'DirectoryOrCreate') mkdirSync(v.hostPath.path, { recursive: true, mode: 0o755 });
          else if (type === 'FileOrCreate') writeFileSync(v.hostPath.path, '', { mode: 0o644 });
          else if (type) throw new Error(`hostPath ${v.hostPath.path} does not exist (type ${type})`);
        }
        this.volumes.set(v.name, { spec: v, path: v.hostPath.path, tokens: new Map(), readOnly: false });
      } else if (v.persistentVolumeClaim) {
        if (!this.options.claimPath)
          throw new Error(`volume ${v.name}: PersistentVolumeClaims are not provided to this pod`);
        const claimDir = this.options.claimPath(v.persistentVolumeClaim.claimName);
        if (!existsSync(claimDir)) {
          mkdirSync(claimDir, { recursive: true, mode: 0o755 });
          if (fsGroup !== undefined) {
            chownSync(claimDir, 0, fsGroup);
            chmodSync(claimDir, 0o2775);
          }
        }
        this.volumes.set(v.name, {
          spec: v,
          path: claimDir,
          tokens: new Map(),
          readOnly: Boolean(v.persistentVolumeClaim.readOnly),
        });
      } else if (v.secret || v.configMap || v.projected || v.downwardAPI) {
        mkdirSync(path, { recursive: true, mode: 0o755 });
        const volume: MaterializedVolume = { spec: v, path, tokens: new Map(), readOnly: true };
        await this.writeProjection(volume, fsGroup);
        this.volumes.set(v.name, volume);
      } else {
        const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
        throw new Error(`volume ${v.name}: type ${kind} is not supported by the local runner`);
      }
    }
  }

  private async serviceAccountToken(
    volume: MaterializedVolume,
    source: { audience?: string; expirationSeconds?: number; path: string },
  ): Promise<string> {
    const cached = volume.tokens.get(source.path);
    if (cached && Date.now() < cached.refreshAt) return cached.token;
    const expirationSeconds = source.expirationSeconds ?? 3600;
    const sa = this.pod.spec.serviceAccountName ?? 'default';
    const response = await this.options.kube.post<{ status: { token: string; expirationTimestamp: string } }>(
      { ...at(RESOURCES.serviceAccount, this.pod.metadata.namespace, sa), subresource: 'token' },
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(source.audience ? { audiences: [source.audience] } : {}),
          expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.name, uid: this.pod.metadata.uid },
        },
      },
    );
    const issued = Date.now();
    const ttl = Date.parse(response.status.expirationTimestamp) - issued;
    // The kubelet refreshes a projected token at 80% of its lifetime (or after 24 h).
    const refreshAt = issued + Math.min(ttl * 0.8, 24 * 3600_000);
    volume.tokens.set(source.path, { token: response.status.token, refreshAt });
    return response.status.token;
  }

  private async keyFiles(
    kind: 'secrets' | 'configmaps',
    name: string | undefined,
    items: KeyToPath[] | undefined,
    optional: boolean | undefined,
    mode: number,
    out: Map<string, FileProjection>,
  ): Promise<void> {
    const obj = name
      ? ((await this.options.kube.getOrNull(CORE(kind, this.pod.metadata.namespace, name))) as
          (KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> }) | null)
      : null;
    if (!obj) {
      if (optional) return;
      throw new Error(`MountVolume.SetUp failed: ${kind === 'secrets' ? 'secret' : 'configmap'} "${name}" not found`);
    }
    const values = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(obj.data ?? {}))
      values.set(k, kind === 'secrets' ? Buffer.from(v, 'base64') : Buffer.from(v));
    for (const [k, v] of Object.entries(obj.binaryData ?? {})) values.set(k, Buffer.from(v, 'base64'));
    if (items?.length) {
      for (const item of items) {
        const value = values.get(item.key);
        if (value === undefined) {
          if (optional) continue;
          throw new Error(`MountVolume.SetUp failed: ${name} has no key ${item.key}`);
        }
        out.set(item.path, { data: value, mode: item.mode ?? mode });
      }
    } else {
      for (const [k, v] of values) out.set(k, { data: v, mode });
    }
  }

  private async writeProjection(volume: MaterializedVolume, fsGroup: number | undefined): Promise<void> {
    const v = volume.spec;
    const files = new Map<string, FileProjection>();
    const downward = (items: DownwardItem[] | undefined, mode: number) => {
      for (const item of items ?? [])
        if (item.fieldRef)
          files.set(item.path, {
            data: Buffer.from(this.fieldValue(item.fieldRef.fieldPath)),
            mode: item.mode ?? mode,
          });
    };
    if (v.secret)
      await this.keyFiles(
        'secrets',
        v.secret.secretName,
        v.secret.items,
        v.secret.optional,
        v.secret.defaultMode ?? 0o644,
        files,
      );
    else if (v.configMap)
      await this.keyFiles(
        'configmaps',
        v.configMap.name,
        v.configMap.items,
        v.configMap.optional,
        v.configMap.defaultMode ?? 0o644,
        files,
      );
    else if (v.downwardAPI) downward(v.downwardAPI.items, v.downwardAPI.defaultMode ?? 0o644);
    else if (v.projected) {
      const mode = v.projected.defaultMode ?? 0o644;
      const fsUser = this.fsUser();
      for (const source of v.projected.sources ?? []) {
        if (source.secret)
          await this.keyFiles('secrets', source.secret.name, source.secret.items, source.secret.optional, mode, files);
        else if (source.configMap)
          await this.keyFiles(
            'configmaps',
            source.configMap.name,
            source.configMap.items,
            source.configMap.optional,
            mode,
            files,
          );
        else if (source.downwardAPI) downward(source.downwardAPI.items, mode);
        else if (source.serviceAccountToken) {
          // pkg/volume/projected: 0600 and owned by the pod's FsUser when FsUser or FsGroup is set.
          const tokenMode = fsUser !== undefined || fsGroup !== undefined ? 0o600 : mode;
          files.set(source.serviceAccountToken.path, {
            data: Buffer.from(await this.serviceAccountToken(volume, source.serviceAccountToken)),
            mode: tokenMode,
            uid: fsUser,
          });
        } else {
          throw new Error(`projected volume ${v.name}: unsupported source ${Object.keys(source).join(',')}`);
        }
      }
    }
    atomicWrite(volume.path, files, fsGroup, this.options.volumeOwnership === 'world-readable');
  }

  private scheduleResync(): void {
    const timer = setInterval(() => {
      if (this.stopping) return;
      this.materializeVolumes().catch((error: unknown) =>
        this.options.log('volume resync failed', { pod: this.name, error: String((error as Error).message) }),
      );
    }, this.options.volumeResyncMs);
    this.timers.add(timer);
  }

  /** A warning in the container's log when a non-root container cannot read a file mounted for it. */
  private warnUnreadable(c: ContainerState): void {
    const { uid, gid, groups } = this.securityOf(c);
    if (!uid) return;
    const myGroups = new Set([gid ?? 0, ...groups]);
    for (const m of c.spec.volumeMounts ?? []) {
      const volume = this.volumes.get(m.name);
      if (!volume || !volume.readOnly) continue;
      for (const entry of safeReaddir(volume.path)) {
        if (entry.startsWith('..')) continue;
        const file = join(volume.path, entry);
        let st;
        try {
          st = statSync(file);
        } catch {
          continue;
        }
        if (!st.isFile()) continue;
        const readable = st.uid === uid ? st.mode & 0o400 : myGroups.has(st.gid) ? st.mode & 0o040 : st.mode & 0o004;
        const key = `${c.spec.name}/${m.name}/${entry}`;
        if (!readable && !this.warned.has(key)) {
          this.warned.add(key);
          const message = `[kamaji-runner] WARNING: ${join(m.mountPath, entry)} (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid}) is not readable by uid ${uid} gid ${gid ?? 0} groups [${groups.join(',')}]; a kubelet sets the same ownership (set podSecurityContext.fsGroup, or a defaultMode readable by others)`;
          appendFileSync(c.logFile, `${message}\n`);
          this.options.log('unreadable volume file', {
            pod: this.name,
            container: c.spec.name,
            file: join(m.mountPath, entry),
            mode: (st.mode & 0o7777).toString(8),
            uid: st.uid,
            gid: st.gid,
            runAsUser: uid,
          });
        }
      }
    }
  }

  // ---- probes ------------------------------------------------------------------------------------

  private startProbes(c: ContainerState, generation: number): void {
    const alive = () => !this.stopping && c.generation === generation && c.running;
    const loop = async (probe: ProbeSpec, kind: 'startup' | 'readiness' | 'liveness') => {
      const period = probe.periodSeconds ?? 10;
      const cap = this.options.probePeriodCapSeconds;
      // Probing more often than the spec says, with the failure window (period x threshold) kept.
      const effectivePeriod = Math.min(period, cap);
      const failureThreshold = Math.ceil(((probe.failureThreshold ?? 3) * period) / effectivePeriod);
      const successThreshold = probe.successThreshold ?? 1;
      let failures = 0;
      let successes = 0;
      await this.sleepWhile(alive, (probe.initialDelaySeconds ?? 0) * 1000);
      while (alive()) {
        if (kind !== 'startup') await this.waitWhile(alive, () => !c.startupDone);
        if (!alive()) return;
        const result = await this.probe(c, probe);
        if (!alive()) return;
        if (result.ok) {
          failures = 0;
          successes++;
          if (kind === 'startup') {
            c.startupDone = true;
            c.started = true;
            this.options.onChange();
            return;
          }
          if (kind === 'readiness' && successes >= successThreshold && !c.ready) {
            c.ready = true;
            if (this.ready && !this.readyAt) this.readyAt = Date.now();
            this.options.onChange();
          }
        } else {
          successes = 0;
          failures++;
          if (kind === 'readiness' && failures >= failureThreshold && c.ready) {
            c.ready = false;
            this.options.log('readiness probe failed', {
              pod: this.name,
              container: c.spec.name,
              error: result.message,
            });
            this.options.onChange();
          }
          if (kind !== 'readiness' && failures >= failureThreshold) {
            appendFileSync(
              c.logFile,
              `[kamaji-runner] ${new Date().toISOString()} ${kind} probe failed ${failures} times (${result.message}); killing ${c.spec.name}\n`,
            );
            this.options.log(`${kind} probe failed; restarting container`, {
              pod: this.name,
              container: c.spec.name,
              error: result.message,
            });
            void this.stopContainer(c);
            return;
          }
        }
        await this.sleepWhile(alive, effectivePeriod * 1000);
      }
    };
    const run = (probe: ProbeSpec, kind: 'startup' | 'readiness' | 'liveness') =>
      void loop(probe, kind).catch((error: unknown) =>
        this.options.log('probe loop failed', {
          pod: this.name,
          container: c.spec.name,
          kind,
          error: String((error as Error)?.message ?? error),
        }),
      );
    if (c.spec.startupProbe) run(c.spec.startupProbe, 'startup');
    if (c.spec.livenessProbe) run(c.spec.livenessProbe, 'liveness');
    if (c.spec.readinessProbe) run(c.spec.readinessProbe, 'readiness');
    else if (c.kind !== 'init') {
      void this.waitWhile(alive, () => !c.startupDone).then(() => {
        if (!alive()) return;
        c.ready = true;
        if (this.ready && !this.readyAt) this.readyAt = Date.now();
        this.options.onChange();
      });
    }
  }

  private async sleepWhile(alive: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (alive() && Date.now() < end) await sleep(Math.min(50, end - Date.now()));
  }

  private async waitWhile(alive: () => boolean, condition: () => boolean): Promise<void> {
    while (alive() && condition()) await sleep(50);
  }

  private async probe(c: ContainerState, probe: ProbeSpec): Promise<{ ok: boolean; message?: string }> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    try {
      if (probe.httpGet) {
        const port = this.resolvePort(c.spec, probe.httpGet.port);
        if (!port) return { ok: false, message: `unknown port ${probe.httpGet.port}` };
        const status = await httpProbe(this.inboundSocket(port), probe.httpGet, port, timeoutMs);
        return status >= 200 && status < 400
          ? { ok: true }
          : { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
      }
      if (probe.tcpSocket) {
        const port = this.resolvePort(c.spec, probe.tcpSocket.port);
        if (!port) return { ok: false, message: `unknown port ${probe.tcpSocket.port}` };
        const answer = await controlRequest(join(this.options.sockDir, 'control'), `connect ${port}\n`, timeoutMs);
        return answer.startsWith('ok') ? { ok: true } : { ok: false, message: answer.trim() };
      }
      if (probe.exec?.command?.length) {
        const code = await this.execInContainer(c, probe.exec.command, timeoutMs);
        return code === 0 ? { ok: true } : { ok: false, message: `command exited with ${code}` };
      }
      return { ok: false, message: 'probe type not supported by the local runner (grpc)' };
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    }
  }

  /** Runs a command in a running container's namespaces (exec probes). */
  private async execInContainer(c: ContainerState, command: string[], timeoutMs: number): Promise<number | null> {
    const { env } = await this.containerCommand(c);
    const args = [
      '-t',
      String(c.pid),
      '-m',
      '-n',
      '-r',
      '-w',
      '--',
      ...this.setprivArgs(c),
      ...command.map((s) => expandVars(s, env)),
    ];
    return new Promise((resolve) => {
      const child = spawn('nsenter', args, { env, stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      child.on('error', () => resolve(1));
    });
  }

  // ---- stopping ----------------------------------------------------------------------------------

  /** SIGTERM to the container's main process, SIGKILL to its process group after the grace period. */
  private async stopContainer(
    c: ContainerState,
    graceMs = (this.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000,
  ): Promise<void> {
    const proc = c.process;
    if (!proc || !proc.running) return;
    try {
      process.kill(c.pid ?? proc.pid, 'SIGTERM');
    } catch {
      // gone
    }
    const end = Date.now() + graceMs;
    while (proc.running && Date.now() < end) await sleep(50);
    if (proc.running) {
      proc.killNow();
      while (proc.running) await sleep(20);
    }
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
      // Like a container: SIGTERM to the sandbox process itself, so bwrap exits after reaping it.
      if (this.sandbox?.running && this.sandboxPid) {
        try {
          process.kill(this.sandboxPid, 'SIGTERM');
        } catch {
          // gone
        }
        for (let i = 0; i < 100 && this.sandbox.running; i++) await sleep(50);
      }
      await this.sandbox?.stop(1000);
      for (const s of this.sockets) s.destroy();
      await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
      rmSync(this.options.sockDir, { recursive: true, force: true });
      this.options.onChange();
    })();
    return this.stopped;
  }

  /** Kills everything at once (runner shutdown on errors). */
  killNow(): void {
    this.stopping = true;
    for (const c of this.containers) c.process?.killNow();
    this.sandbox?.killNow();
  }

  // ---- status ------------------------------------------------------------------------------------

  /** The Pod's status as a kubelet would report it. */
  status(): Record<string, unknown> {
    const now = new Date().toISOString();
    const statusOf = (c: ContainerState) => {
      const image = c.spec.image ?? '';
      const state = c.running
        ? { running: { startedAt: c.startedAt } }
        : (c.kind === 'init' && c.lastExitCode === 0) ||
            (c.kind === 'container' && c.lastTerminated && (this.phase === 'Succeeded' || this.phase === 'Failed'))
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
                reason: c.reason ?? (this.sandboxReady ? 'PodInitializing' : 'ContainerCreating'),
                ...(c.message ? { message: c.message } : {}),
              },
            };
      return {
        name: c.spec.name,
        image,
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
    const init = this.containers.filter((c) => c.kind !== 'container');
    const main = this.containers.filter((c) => c.kind === 'container');
    const containersReady = this.initialized && this.containers.every((c) => c.kind === 'init' || c.ready);
    const condition = (type: string, ok: boolean, reason?: string) => ({
      type,
      status: ok ? 'True' : 'False',
      lastProbeTime: null,
      lastTransitionTime: now,
      ...(ok || !reason ? {} : { reason }),
    });
    return {
      phase: this.phase,
      ...(this.podMessage ? { message: this.podMessage } : {}),
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: this.options.podIP,
      podIPs: [{ ip: this.options.podIP }],
      startTime: new Date(this.startedAt).toISOString(),
      conditions: [
        condition('PodReadyToStartContainers', this.sandboxReady),
        condition('Initialized', this.initialized, 'ContainersNotInitialized'),
        condition('Ready', containersReady, 'ContainersNotReady'),
        condition('ContainersReady', containersReady, 'ContainersNotReady'),
        condition('PodScheduled', true),
      ],
      initContainerStatuses: init.map(statusOf),
      containerStatuses: main.map(statusOf),
      // Computed by the apiserver at creation and immutable: echo what it admitted.
      qosClass: (this.pod.status as { qosClass?: string } | undefined)?.qosClass,
    };
  }

  tail(container: string, lines = 40): string {
    const c = this.container(container);
    return c ? tailFile(c.logFile, lines) : `(no container ${container})`;
  }
}

// ---------------------------------------------------------------------------------------------

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/**
 * The kubelet's AtomicWriter layout: the files live in a timestamped dir, `..data` points at it
 * and each top-level entry is a symlink through `..data`, so a content update is one rename.
 * Ownership and modes as pkg/volume SetVolumeOwnership sets them for read-only volumes.
 */
export function atomicWrite(
  dir: string,
  files: Map<string, FileProjection>,
  fsGroup: number | undefined,
  worldReadable: boolean,
): void {
  const dataLink = join(dir, '..data');
  const modeOf = (f: FileProjection) =>
    (f.mode & 0o777) | (fsGroup !== undefined ? 0o440 : 0) | (worldReadable ? 0o444 : 0);
  // Unchanged content and metadata: nothing to do (the kubelet compares too).
  if (existsSync(dataLink)) {
    const current = join(dir, readlinkSync(dataLink));
    const same = [...files].every(([path, f]) => {
      try {
        const st = statSync(join(current, path));
        return (
          readFileSync(join(current, path)).equals(f.data) && (st.mode & 0o777) === modeOf(f) && st.uid === (f.uid ?? 0)
        );
      } catch {
        return false;
      }
    });
    const currentTop = safeReaddir(dir).filter((e) => !e.startsWith('..'));
    const wantedTop = new Set([...files.keys()].map((p) => p.split('/')[0]!));
    if (same && currentTop.length === wantedTop.size && currentTop.every((e) => wantedTop.has(e))) return;
  }
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomBytes(4).toString('hex')}`;
  const target = join(dir, stamp);
  mkdirSync(target, { mode: 0o755 });
  for (const [path, f] of files) {
    const file = join(target, path);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, f.data);
    chmodSync(file, modeOf(f));
    chownSync(file, f.uid ?? 0, fsGroup ?? 0);
  }
  if (fsGroup !== undefined) {
    for (const d of [dir, target]) {
      chownSync(d, 0, fsGroup);
      chmodSync(d, 0o2755 | 0o050);
    }
  }
  const previous = existsSync(dataLink) ? readlinkSync(dataLink) : undefined;
  const tmpLink = join(dir, '..data_tmp');
  rmSync(tmpLink, { force: true });
  symlinkSync(stamp, tmpLink);
  renameSync(tmpLink, dataLink);
  const wantedTop = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  for (const top of wantedTop) {
    const link = join(dir, top);
    if (!existsSync(link) && !isSymlink(link)) symlinkSync(join('..data', top), link);
  }
  for (const entry of safeReaddir(dir)) {
    if (!entry.startsWith('..') && !wantedTop.has(entry)) rmSync(join(dir, entry), { recursive: true, force: true });
  }
  if (previous && previous !== stamp) rmSync(join(dir, previous), { recursive: true, force: true });
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function httpProbe(
  socketPath: string,
  action: NonNullable<ProbeSpec['httpGet']>,
  port: number,
  timeoutMs: number,
): Promise<number> {
  const https = (action.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = {
    Host: `${action.host ?? '127.0.0.1'}:${port}`,
    'User-Agent': 'kube-probe/1.36',
    Accept: '*/*',
  };
  for (const h of action.httpHeaders ?? []) headers[h.name] = h.value;
  const path = action.path ?? '/';
  return new Promise((resolve, reject) => {
    const options = {
      socketPath,
      path: path.startsWith('/') ? path : `/${path}`,
      method: 'GET',
      headers,
      timeout: timeoutMs,
    };
    const req = https ? httpsRequest({ ...options, rejectUnauthorized: false }) : httpRequest(options);
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`probe timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function controlRequest(socketPath: string, line: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    socket.on('connect', () => socket.write(line));
    socket.on('data', (d: string) => (answer += d));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

/** Fails with a clear message when a tool the runner needs is missing (never a silent skip). */
export function checkSandboxTools(): void {
  const missing: string[] = [];
  for (const [tool, pkg] of [
    ['bwrap', 'bubblewrap'],
    ['nsenter', 'util-linux'],
    ['setpriv', 'util-linux'],
  ] as const) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      missing.push(`${tool} (apt package ${pkg})`);
    }
  }
  if (missing.length)
    throw new Error(
      `the local Kamaji runner needs ${missing.join(', ')}: install it (e.g. apt-get install bubblewrap util-linux)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error(
      'the local Kamaji runner needs root (bwrap --unshare-net, nsenter and setpriv switch namespaces and users)',
    );
}
