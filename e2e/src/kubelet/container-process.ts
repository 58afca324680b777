// One run of a container: its command and environment resolved, its isolation built, its
// process started in the pod's network namespace and watched until it exits; and `exec` in a
// running container (exec probes). The restart policy around it stays with the pod (pod.ts).
import { spawn } from 'node:child_process';
import type { KubeClient } from '@kdc/shared';
import { ManagedProcess } from '../process.ts';
import { sleep } from '../wait.ts';
import { mainPid, type ContainerState } from './container.ts';
import { ContainerConfigError, containerArgv, containerEnv, expandVars } from './env.ts';
import { isOciImage, localImage, ociEnv, type LocalImage } from './image.ts';
import { bwrapArgs, securityOf, setprivArgs } from './isolation.ts';
import type { PodObject } from './pod-spec.ts';
import { startProbes, type ProbeHost } from './probes.ts';
import type { PodVolumes } from './volumes.ts';

/** An exit code, null when killed by a signal, 'not-started' for a configuration error. */
export type RunResult = number | null | 'not-started';

/** What starting a container needs of its pod. */
export interface ContainerHost {
  readonly kube: KubeClient;
  readonly pod: PodObject;
  readonly images: Record<string, LocalImage>;
  readonly podDir: string;
  readonly podIP: string;
  /** Env for every container of the node (KUBERNETES_SERVICE_*). */
  readonly nodeEnv: Record<string, string>;
  readonly volumes: PodVolumes;
  readonly probes: ProbeHost;
  sandboxPid(): number | undefined;
  stopping(): boolean;
  sleepUnlessStopped(ms: number): Promise<void>;
  changed(): void;
  log(message: string, fields?: Record<string, unknown>): void;
}

export class ContainerLauncher {
  private readonly host: ContainerHost;

  constructor(host: ContainerHost) {
    this.host = host;
  }

  /** Starts the container and resolves with its exit code once it has exited ('not-started': config error). */
  async runOnce(c: ContainerState): Promise<RunResult> {
    let argv: string[];
    let env: Record<string, string>;
    let args: string[];
    try {
      ({ argv, env } = await this.command(c));
      const image = localImage(this.host.images, c.spec.image);
      const isolation = bwrapArgs({
        container: c.spec,
        image,
        security: securityOf(this.host.pod.spec, c.spec, this.host.images),
        podDir: this.host.podDir,
        podName: this.host.pod.metadata.name,
        podIP: this.host.podIP,
        volume: (name) => this.host.volumes.get(name),
      });
      args = [`--net=/proc/${this.host.sandboxPid()}/ns/net`, '--', 'bwrap', ...isolation, '--', ...argv];
    } catch (error) {
      const e = error as Error;
      const reason = e instanceof ContainerConfigError ? e.reason : 'CreateContainerConfigError';
      if (c.reason !== reason || c.message !== e.message) {
        c.note(`${new Date().toISOString()} cannot start ${c.spec.name}: ${reason}: ${e.message}`);
        this.host.log('cannot start container', {
          pod: this.host.pod.metadata.name,
          container: c.spec.name,
          reason,
          error: e.message,
        });
      }
      c.reason = reason;
      c.message = e.message;
      this.host.changed();
      await this.host.sleepUnlessStopped(2000);
      return 'not-started';
    }
    if (this.host.stopping()) return 'not-started';
    const generation = ++c.generation;
    c.note(`${new Date().toISOString()} starting ${c.spec.name} (restart ${c.restartCount}): ${JSON.stringify(argv)}`);
    const proc = ManagedProcess.start({
      name: `${this.host.pod.metadata.name}/${c.spec.name}`,
      binary: 'nsenter',
      args,
      logFile: c.logFile,
      env,
    });
    c.process = proc;
    c.pid = await mainPid(proc);
    c.running = true;
    c.reason = undefined;
    c.message = undefined;
    c.startedAt = new Date().toISOString();
    c.ready = false;
    c.startupDone = !c.spec.startupProbe;
    c.started = c.startupDone;
    this.host.volumes.warnUnreadable(c, securityOf(this.host.pod.spec, c.spec, this.host.images));
    this.host.changed();
    startProbes(this.host.probes, c, generation);
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
    c.note(`${c.finishedAt} ${c.spec.name} exited with ${proc.code}`);
    this.host.changed();
    return proc.code ?? null;
  }

  async command(c: ContainerState): Promise<{ argv: string[]; env: Record<string, string> }> {
    const { uid, runAsNonRoot } = securityOf(this.host.pod.spec, c.spec, this.host.images);
    if (runAsNonRoot && !uid) {
      throw new ContainerConfigError(
        'CreateContainerConfigError',
        uid === 0
          ? "container's runAsUser breaks non-root policy"
          : 'container has runAsNonRoot and image will run as root',
      );
    }
    const image = localImage(this.host.images, c.spec.image);
    const env = await containerEnv({
      kube: this.host.kube,
      pod: this.host.pod,
      podIP: this.host.podIP,
      container: c.spec,
      uid,
      imageEnv: isOciImage(image) ? ociEnv(image) : undefined,
      nodeEnv: this.host.nodeEnv,
    });
    return { argv: containerArgv(c.spec, image, env), env };
  }

  /** Runs a command in a running container's namespaces (exec probes). */
  async exec(c: ContainerState, command: string[], timeoutMs: number): Promise<number | null> {
    const { env } = await this.command(c);
    const security = securityOf(this.host.pod.spec, c.spec, this.host.images);
    const setpriv = setprivArgs(security, localImage(this.host.images, c.spec.image));
    const args = [
      '-t',
      String(c.pid),
      '-m',
      '-n',
      '-r',
      '-w',
      '--',
      ...setpriv,
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
}
