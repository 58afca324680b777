// The process around a set of controllers, as controller-runtime's manager.Start: one Kubernetes
// client, the informers (started and synced before anyone leads), the metrics and probe server
// (ready once every informer has synced), leader election (controllers run only while leading),
// and shutdown in the one safe order. A main.ts is then configuration plus registration.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createLogger } from '../log.ts';
import { controllerMetrics, countKubeRequests, createRegistry, serveMetrics, splitHostPort } from '../metrics.ts';
import { Controller, type ControllerOptions } from './controller.ts';
import { EventRecorder } from './events.ts';
import { Informer } from './informer.ts';
import { KubeClient, type KubeObject, type ResourceRef, type TypedRef } from './kube.ts';
import { LeaderElector } from './leader.ts';
import { onShutdown } from './shutdown.ts';

export interface ManagerOptions {
  /** Component name: the logger's, the events' source and the default Lease name. */
  name: string;
  env?: NodeJS.ProcessEnv;
  /** METRICS_ADDR when unset. */
  defaultMetricsAddr: string;
  /** LEASE_NAME when unset: `name`. */
  defaultLease?: string;
}

/** A configuration error: the process says what to fix and exits 2 (kubelet's CrashLoop shows it). */
export class ConfigError extends Error {
  readonly kind = 'config';
}

export class Manager {
  readonly name: string;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly registry: Registry = createRegistry();
  readonly kube: KubeClient;
  readonly identity: string;
  /** The namespace the controller runs in (POD_NAMESPACE): its Lease, Events and tasks live there. */
  readonly namespace: string;
  readonly recorder: EventRecorder;
  readonly lease: string;
  private readonly metricsAddress: { host: string; port: number };
  private readonly informers: Pick<Informer<KubeObject>, 'start' | 'stop' | 'hasSynced' | 'waitForSync'>[] = [];
  private readonly controllers: Controller[] = [];
  private readonly beforeSync: (() => Promise<void>)[] = [];
  private readonly afterStop: (() => void | Promise<void>)[] = [];

  constructor(options: ManagerOptions) {
    this.name = options.name;
    this.env = options.env ?? process.env;
    this.logger = createLogger(options.name);
    try {
      this.kube = this.env.KUBECONFIG ? KubeClient.fromFile(this.env.KUBECONFIG) : KubeClient.fromDefault();
    } catch (error) {
      this.fail((error as Error).message);
    }
    countKubeRequests(this.kube, this.registry);
    this.identity = this.env.POD_NAME ?? `${hostname()}-${process.pid}`;
    this.namespace = this.env.POD_NAMESPACE ?? 'kube-dc-system';
    this.lease = this.env.LEASE_NAME ?? options.defaultLease ?? options.name;
    this.recorder = new EventRecorder(this.kube, options.name, this.identity);
    try {
      this.metricsAddress = splitHostPort(this.env.METRICS_ADDR ?? options.defaultMetricsAddr);
    } catch (error) {
      this.fail(`METRICS_ADDR ${(error as Error).message}: set host:port, e.g. 0.0.0.0:8080`);
    }
  }

  /** Logs what to fix and exits 2. */
  fail(message: string): never {
    this.logger.error(message);
    process.exit(2);
  }

  /** Runs `read` and turns a ConfigError (or any error) into fail(). */
  configure<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      return this.fail((error as Error).message);
    }
  }

  informer<T extends KubeObject>(ref: TypedRef<T>, options?: { labelSelector?: string }): Informer<T>;
  /** An informer whose cache keeps `transform(object)` of each object (a slim view of a large or numerous resource). */
  informer<S extends KubeObject, T extends KubeObject>(
    ref: TypedRef<S>,
    options: { labelSelector?: string; transform: (object: S) => T },
  ): Informer<T>;
  informer<S extends KubeObject, T extends KubeObject>(
    ref: TypedRef<S>,
    options: { labelSelector?: string; transform?: (object: S) => T } = {},
  ): Informer<T> {
    const { transform } = options;
    const resource: ResourceRef = ref; // the cache's type is T, the transform's output
    const informer = new Informer<T>(this.kube, resource, {
      logger: this.logger,
      labelSelector: options.labelSelector,
      // The apiserver sends objects of the resource: S is what they are.
      ...(transform ? { transform: (object: KubeObject) => transform(object as S) } : {}),
    });
    this.informers.push(informer);
    return informer;
  }

  /** A controller that runs while this process leads; `enabled: false` registers nothing. */
  controller(options: Omit<ControllerOptions, 'logger' | 'registry'>, enabled = true): Controller {
    const controller = new Controller({ ...options, logger: this.logger, registry: this.registry });
    if (enabled) this.controllers.push(controller);
    return controller;
  }

  /** Work that must succeed before the informers start (e.g. a first OpenBao login). */
  onBeforeSync(start: () => Promise<void>): void {
    this.beforeSync.push(start);
  }

  /** Cleanup after controllers and election stopped, before the informers stop. */
  onStop(stop: () => void | Promise<void>): void {
    this.afterStop.push(stop);
  }

  async start(fields: Record<string, unknown> = {}): Promise<void> {
    const { host, port } = this.metricsAddress;
    const server = await serveMetrics(this.registry, {
      host,
      port,
      ready: () => this.informers.every((i) => i.hasSynced),
    }).catch((error: Error) =>
      this.fail(`cannot serve metrics and probes on ${host}:${port} (METRICS_ADDR): ${error.message}`),
    );
    for (const start of this.beforeSync) await start().catch((error: Error) => this.fail(error.message));
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((i) => i.waitForSync()));

    const leaderGauge = controllerMetrics(this.registry).isLeader;
    const elector = new LeaderElector(this.kube, {
      namespace: this.namespace,
      name: this.lease,
      identity: this.identity,
      logger: this.logger,
      onStartedLeading: () => {
        leaderGauge.set({ lease: this.lease }, 1);
        for (const c of this.controllers) c.start();
      },
      onStoppedLeading: () => {
        leaderGauge.set({ lease: this.lease }, 0);
        // Another instance leads now: stop at once rather than act on a lease we no longer hold.
        void this.stopControllers().then(() => process.exit(1));
      },
    });
    elector.start();
    this.logger.info({ identity: this.identity, lease: this.lease, ...fields }, `${this.name} started`);

    onShutdown(
      async () => {
        await this.stopControllers();
        await elector.stop();
        for (const stop of this.afterStop) await stop();
        await Promise.all(this.informers.map((i) => i.stop()));
        server.close();
      },
      { logger: this.logger },
    );
  }

  private async stopControllers(): Promise<void> {
    await Promise.all(this.controllers.map((c) => c.stop()));
  }
}
