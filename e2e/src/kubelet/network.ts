// A pod's network: the sandbox process (sandbox.ts under `bwrap --unshare-net`) that holds the
// pod's network namespace, and the host side of its bridges. Outbound, the pod reaches chosen
// host loopback ports (the platform's servers, Services) through Unix sockets; inbound, every pod
// port is served on the pod's own loopback IP under its number (as a pod IP is reachable in a
// cluster) and on a free host port (tests, debugging).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../ports.ts';
import { ManagedProcess } from '../process.ts';
import { sleep } from '../wait.ts';

const SANDBOX_MAIN = fileURLToPath(new URL('./sandbox.ts', import.meta.url));

export interface PodNetworkOptions {
  podName: string;
  /** The pod's IP on the host: a loopback address of its own (all of 127/8 reaches lo). */
  podIP: string;
  /** Ports to serve inbound (podPorts of the spec). */
  ports: number[];
  /** Host loopback ports the pod must reach from the start. */
  outboundPorts: number[];
  /** Unix sockets of the bridges (kept short: a socket path has at most 108 bytes). */
  sockDir: string;
  dir: string;
  /** The sandbox's own log file. */
  logFile: string;
  /** True once the pod is stopping: a sandbox still starting gives up. */
  closed: () => boolean;
}

/** One line to the sandbox's control socket, its answer back. */
export function controlRequest(socketPath: string, line: string, timeoutMs: number): Promise<string> {
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

export class PodNetwork {
  /** Container port -> host port (127.0.0.1). */
  readonly hostPorts = new Map<number, number>();
  sandboxPid?: number;
  /** The sandbox answers on its sockets (PodReadyToStartContainers). */
  ready = false;
  private readonly options: PodNetworkOptions;
  private sandbox?: ManagedProcess;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  /** Host ports bridged into the pod; those added before the sandbox was set up go with its config. */
  private readonly outbound: Set<number>;
  private configured = false;

  constructor(options: PodNetworkOptions) {
    this.options = options;
    this.outbound = new Set(options.outboundPorts);
  }

  /** The sandbox process runs (a kubelet recreates a pod whose sandbox died). */
  get running(): boolean {
    return Boolean(this.sandbox?.running);
  }

  inboundSocket(port: number): string {
    return join(this.options.sockDir, `i${port}`);
  }

  control(line: string, timeoutMs: number): Promise<string> {
    return controlRequest(join(this.options.sockDir, 'control'), line, timeoutMs);
  }

  async start(): Promise<void> {
    const sock = this.options.sockDir;
    mkdirSync(sock, { recursive: true, mode: 0o700 });
    this.configured = true;
    const outbound = [...this.outbound].map((port) => ({ port, socket: join(sock, `o${port}`) }));
    const inbound = this.options.ports.map((port) => ({ port, socket: this.inboundSocket(port) }));
    for (const { port, socket } of outbound) await this.serveOutbound(port, socket);
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
      name: `${this.options.podName}/sandbox`,
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
      logFile: this.options.logFile,
    });
    const deadline = Date.now() + 30_000;
    while (!existsSync(config.readyFile)) {
      if (!this.sandbox.running) throw new Error(`pod sandbox exited:\n${this.sandbox.tail()}`);
      if (Date.now() > deadline) throw new Error(`pod sandbox not ready after 30 s:\n${this.sandbox.tail()}`);
      if (this.options.closed()) return;
      await sleep(20);
    }
    this.sandboxPid = (JSON.parse(readFileSync(config.readyFile, 'utf8')) as { pid: number }).pid;
    this.ready = true;
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
    if (this.outbound.has(port) || this.options.closed()) return;
    this.outbound.add(port);
    if (!this.configured) return;
    while (!this.ready && !this.options.closed()) await sleep(50);
    if (this.options.closed()) return;
    const socket = join(this.options.sockDir, `o${port}`);
    await this.serveOutbound(port, socket);
    const answer = await this.control(`outbound ${port} ${socket}\n`, 5000);
    if (!answer.startsWith('ok'))
      throw new Error(`pod ${this.options.podName}: cannot bridge port ${port}: ${answer.trim()}`);
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

  /** After the containers: SIGTERM to the sandbox process itself, so bwrap exits after reaping it. */
  async close(): Promise<void> {
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
  }

  killNow(): void {
    this.sandbox?.killNow();
  }
}
