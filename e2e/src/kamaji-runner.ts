// The local Kamaji runner. Kamaji needs a kubelet, which cannot run here; this plays Kamaji's
// part with real processes: it watches TenantControlPlanes (kamaji.clastix.io/v1alpha1) on the
// management kube-apiserver and, for each, does what Kamaji + a kubelet would do:
//   Kamaji half (this file): per-TCP PKI and admin kubeconfig Secrets, the control-plane pods
//     (their template in kamaji-template.ts: additional init containers / containers / volumes /
//     mounts / extraArgs merged the way Kamaji merges them, plus the kube-apiserver container;
//     `replicas` of them rolled like Kamaji's Deployment, kamaji-rollout.ts), their Pod objects
//     in the TCP namespace, the TCP status, and a stable endpoint (a host port in front of the
//     ready pods, like the TCP Service).
//   kubelet half (kamaji-pod.ts): runs the admitted Pod spec generically in a network-namespace
//     sandbox, with volumes, probes, restart policy and security context.
// It never looks at what the containers are: any init container, sidecar or volume runs as the
// Pod spec says. Only the kube-apiserver container is Kamaji's own.
import { randomBytes } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { LocalImage } from './kamaji-image.ts';
import {
  Informer,
  KubeClient,
  isAlreadyExists,
  isNotFound,
  type KubeObject,
  type ResourceRef,
  at,
  RESOURCES,
} from '@kdc/shared';
import { LocalDeploymentRunner } from './kamaji-deployments.ts';
import { LocalJobRunner } from './kamaji-jobs.ts';
import { LocalPodRunner } from './kamaji-pods.ts';
import { findIn, type WorkloadRunnerDeps } from './kamaji-workloads.ts';
import { LocalStatefulSetRunner } from './kamaji-statefulsets.ts';
import { createCA, issueCert } from './pki.ts';
import { checkSandboxTools, PodRuntime, type ContainerInfo, type PodObject } from './kamaji-pod.ts';
import type { PlatformState } from './platform.ts';
import { freePort } from './ports.ts';
import { nextRolloutStep } from './kamaji-rollout.ts';
import {
  LOCAL_NODE_NAME,
  NAME_LABEL,
  PKI_SECRETS,
  apiServerImage,
  apiServerPort,
  buildPod,
  datastoreCertsSecret,
  etcdPrefix,
  firstServiceIp,
  pkiPaths,
  templateHash,
  type EtcdTarget,
  type TenantControlPlane,
} from './kamaji-template.ts';
import { waitFor } from './wait.ts';

export type { ContainerInfo } from './kamaji-pod.ts';
export {
  LOCAL_NODE_NAME,
  PKI_SECRETS,
  apiServerImage,
  buildPod,
  datastoreCertsSecret,
  mergeApiServerArgs,
  templateHash,
  type EtcdTarget,
} from './kamaji-template.ts';

/** A random address in 127.64.0.0-127.250.255.255: distinct pods (and runners in other test processes) do not collide. */
function randomLoopbackIp(): string {
  const [a, b, c] = randomBytes(3);
  return `127.${64 + (a! % 187)}.${b}.${1 + (c! % 254)}`;
}
const FIELD_MANAGER = 'kamaji-local-runner';
const DATASTORE = (name?: string): ResourceRef => ({ ...RESOURCES.dataStore, name });
type DataStoreContent = { content?: string; secretReference?: { name?: string; namespace?: string; keyPath: string } };
interface DataStore extends KubeObject {
  spec: {
    driver: string;
    endpoints: string[];
    tlsConfig?: {
      certificateAuthority?: { certificate?: DataStoreContent; privateKey?: DataStoreContent };
      clientCertificate?: { certificate?: DataStoreContent; privateKey?: DataStoreContent };
    };
  };
}
const TCP = (namespace?: string, name?: string): ResourceRef => ({ ...RESOURCES.tenantControlPlane, namespace, name });

export interface KamajiRunnerOptions {
  /**
   * Image reference -> its entrypoint argv on this host, or an unpacked image (kamaji-image.ts:
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
  /** Seconds a container gets between SIGTERM and SIGKILL when stopped (default: the Pod's terminationGracePeriodSeconds). */
  terminationGraceSeconds?: number;
  /** More host ports pods may reach besides the platform's servers (e.g. a dedicated DataStore etcd). */
  extraOutboundPorts?: number[];
  /** Also run batch/v1 Jobs and single-replica apps/v1 StatefulSets in the watched namespaces (kamaji-jobs.ts, kamaji-statefulsets.ts). Default true. */
  jobs?: boolean;
  /** Also run apps/v1 Deployments in the watched namespaces (kamaji-deployments.ts): the chart's controllers. Default false. */
  deployments?: boolean;
  /** Also schedule and run Pods nobody owns (kamaji-pods.ts): `helm test`'s. Default false. */
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

interface TcpPki {
  caPem: string;
  adminCertPem: string;
  adminKeyPem: string;
}

interface TcpState {
  namespace: string;
  name: string;
  dir: string;
  hostPort: number;
  server: Server;
  connections: Set<Socket>;
  pki?: TcpPki;
  adminKubeconfig: string;
  /** The control-plane pods, in start order (kamaji-rollout.ts decides the next change). */
  replicas: Replica[];
  holdBack: number;
  /** Round-robin over the ready pods, like the TCP's Service. */
  nextConnection: number;
  everReady: boolean;
  error?: string;
  chain: Promise<void>;
  queued: boolean;
  failures: number;
  retry?: NodeJS.Timeout;
  flushTimer?: NodeJS.Timeout;
  deleted: boolean;
  tearingDown: boolean;
}

interface Replica {
  runtime: PodRuntime;
  hash: string;
  dir: string;
  lastPodStatus?: string;
  conditionTimes: Map<string, { status: string; time: string }>;
  wasReady: boolean;
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

class Runner implements KamajiRunner {
  readonly dir: string;
  readonly logFile: string;
  private readonly state: PlatformState;
  private readonly kube: KubeClient;
  private readonly options: KamajiRunnerOptions;
  private readonly images: Record<string, LocalImage>;
  private readonly informers: Informer<TenantControlPlane>[] = [];
  private readonly tcps = new Map<string, TcpState>();
  private readonly logDir: string;
  private readonly sockRoot: string;
  private outboundPorts: number[];
  private stopping = false;
  private podSeq = 0;
  private readonly runtimes = new Set<PodRuntime>();
  private jobs?: LocalJobRunner;
  private statefulSets?: LocalStatefulSetRunner;
  private deployments?: LocalDeploymentRunner;
  private barePods?: LocalPodRunner;

  constructor(state: PlatformState, options: KamajiRunnerOptions) {
    this.state = state;
    this.options = options;
    this.dir = options.dir ?? join(state.dir, 'kamaji-runner');
    this.logDir = options.logDir ?? state.logDir;
    mkdirSync(this.dir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    this.logFile = join(this.logDir, 'kamaji-runner.log');
    // Unix socket paths are limited to 108 bytes: keep them short, whatever `dir` is.
    this.sockRoot = mkdtempSync(join(tmpdir(), 'kdc-kr-'));
    this.kube = KubeClient.fromFile(state.management.kubeconfig);
    this.images = { 'registry.k8s.io/kube-apiserver': [state.binaries['kube-apiserver']], ...options.images };
    const ports = [state.etcd.endpoint, state.management.url, state.openbao.url, state.s3.endpoint]
      .map((u) => Number(new URL(u).port))
      .filter((p) => p > 0);
    this.outboundPorts = [...new Set([...ports, ...(options.extraOutboundPorts ?? [])])];
  }

  log(message: string, fields: Record<string, unknown> = {}): void {
    appendFileSync(this.logFile, `${JSON.stringify({ time: new Date().toISOString(), msg: message, ...fields })}\n`);
  }

  async start(): Promise<void> {
    const namespaces = this.options.namespaces ?? [undefined];
    for (const ns of namespaces) {
      const informer = new Informer<TenantControlPlane>(this.kube, TCP(ns));
      informer.on((_event, tcp) => this.enqueue(`${tcp.metadata.namespace}/${tcp.metadata.name}`));
      this.informers.push(informer);
      informer.start();
    }
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    if (this.options.jobs ?? true) {
      this.jobs = new LocalJobRunner(this.workloadDeps('jobs', namespaces));
      await this.jobs.start();
      this.statefulSets = new LocalStatefulSetRunner({
        ...this.workloadDeps('statefulsets', namespaces),
        onServicePort: (port) => this.addServicePort(port),
      });
      await this.statefulSets.start();
    }
    if (this.options.deployments) {
      this.deployments = new LocalDeploymentRunner(this.workloadDeps('deployments', namespaces));
      await this.deployments.start();
    }
    if (this.options.pods) {
      this.barePods = new LocalPodRunner(this.workloadDeps('pods', namespaces));
      await this.barePods.start();
    }
    this.log('runner started', { namespaces: this.options.namespaces ?? 'all', outboundPorts: this.outboundPorts });
  }

  private get(key: string): TenantControlPlane | undefined {
    return findIn(this.informers, key);
  }

  private enqueue(key: string, delayMs = 0): void {
    if (this.stopping) return;
    const existing = this.tcps.get(key);
    if (delayMs > 0) {
      if (existing?.retry) return;
      const timer = setTimeout(() => {
        if (existing) existing.retry = undefined;
        this.enqueue(key);
      }, delayMs);
      if (existing) existing.retry = timer;
      return;
    }
    this.stateFor(key)
      .then((s) => {
        if (s.queued) return;
        s.queued = true;
        s.chain = s.chain.then(async () => {
          s.queued = false;
          if (this.stopping) return;
          try {
            await this.reconcile(key, s);
            s.failures = 0;
            s.error = undefined;
          } catch (error) {
            s.error = String((error as Error)?.message ?? error);
            const delay = Math.min(500 * 2 ** s.failures++, 10_000);
            this.log('reconcile failed; retrying', { tcp: key, retryInMs: delay, error: s.error });
            this.enqueue(key, delay);
          }
        });
      })
      .catch((error: unknown) =>
        this.log('cannot track TCP', { tcp: key, error: String((error as Error)?.message ?? error) }),
      );
  }

  private stateCreating = new Map<string, Promise<TcpState>>();

  private stateFor(key: string): Promise<TcpState> {
    const existing = this.tcps.get(key);
    if (existing) return Promise.resolve(existing);
    let creating = this.stateCreating.get(key);
    if (!creating) {
      creating = (async () => {
        const [namespace, name] = key.split('/') as [string, string];
        const hostPort = await freePort();
        const s: TcpState = {
          namespace,
          name,
          hostPort,
          dir: join(this.dir, 'tcp', `${namespace}_${name}`),
          server: undefined as unknown as Server,
          connections: new Set(),
          adminKubeconfig: '',
          replicas: [],
          holdBack: 0,
          nextConnection: 0,
          everReady: false,
          chain: Promise.resolve(),
          queued: false,
          failures: 0,
          deleted: false,
          tearingDown: false,
        };
        s.adminKubeconfig = join(s.dir, 'admin.kubeconfig');
        mkdirSync(s.dir, { recursive: true });
        // The TCP "Service": a stable host port forwarded to the ready pods in turn (to any pod while none is ready).
        const sockets = new Set<Socket>();
        s.server = createServer((client) => {
          const tcp = this.get(key);
          const ready = s.replicas.filter((r) => r.runtime.ready);
          const pool = ready.length ? ready : s.replicas;
          const pod = pool[s.nextConnection++ % Math.max(1, pool.length)]?.runtime;
          if (!pod || !tcp) return client.destroy();
          const upstream = createConnection(pod.inboundSocket(apiServerPort(tcp)));
          for (const sock of [client, upstream]) {
            sockets.add(sock);
            sock.on('close', () => sockets.delete(sock));
          }
          client.pipe(upstream);
          upstream.pipe(client);
          client.on('error', () => upstream.destroy());
          upstream.on('error', () => client.destroy());
        });
        s.connections = sockets;
        await new Promise<void>((resolve, reject) => {
          s.server.once('error', reject);
          s.server.listen(hostPort, '127.0.0.1', resolve);
        });
        // Controllers running as pods (Deployments) reach the tenant apiserver as they would its Service.
        this.addServicePort(hostPort);
        this.tcps.set(key, s);
        this.stateCreating.delete(key);
        return s;
      })();
      this.stateCreating.set(key, creating);
    }
    return creating;
  }

  private async reconcile(key: string, s: TcpState): Promise<void> {
    const tcp = this.get(key);
    if (!tcp || tcp.metadata.deletionTimestamp) {
      if (!s.deleted) await this.teardown(s, tcp);
      return;
    }
    s.deleted = false;
    await this.ensurePki(tcp, s);
    const replicas = tcp.spec.controlPlane?.deployment?.replicas;
    if (replicas === 0) {
      // Scaled to zero: Kamaji's Deployment has no pods and the TCP reports Sleeping.
      if (s.replicas.length) {
        this.log('replicas 0; stopping the pod', { tcp: key });
        await this.stopPods(s);
      }
      await this.syncSleepingStatus(s, tcp);
      return;
    }
    const hash = templateHash(tcp);
    const want = replicas ?? 1;
    // A few changes per reconcile: a started pod must become ready before the rollout goes on
    // (its readiness change brings the next reconcile).
    for (let i = 0; i < 2 * want + 4; i++) {
      const step = nextRolloutStep({
        want,
        hash,
        holdBack: s.holdBack,
        replicas: s.replicas.map((r) => ({ hash: r.hash, phase: r.runtime.phase, ready: r.runtime.ready })),
      });
      if (step.kind === 'none') break;
      if (step.kind === 'stop') {
        const r = s.replicas[step.index]!;
        const message = {
          failed: 'pod failed; replacing it',
          replaced: 'pod template changed; replacing the pod',
          surplus: 'scaled down; stopping a pod',
        }[step.why];
        this.log(message, { tcp: key, pod: r.runtime.name, from: r.hash, to: hash, message: r.runtime.podMessage });
        // Without its sandbox the pod has no network: graceful shutdowns would only time out.
        await this.stopReplica(s, r, step.why === 'failed' ? 2000 : undefined);
        continue;
      }
      for (let n = 0; n < step.count; n++) await this.startReplica(key, s, tcp, hash);
      break;
    }
    await this.syncStatus(s);
  }

  private async startReplica(key: string, s: TcpState, tcp: TenantControlPlane, hash: string): Promise<void> {
    // The first pod of a template keeps the name it always had; more of the same template are numbered.
    const taken = new Set(s.replicas.map((r) => r.runtime.name));
    const base = `${s.name}-${hash}-local`;
    let name = base;
    for (let n = 1; taken.has(name); n++) name = `${base}-${n}`;
    const pod = await this.createPodObject(tcp, hash, name, s.replicas.length === 0);
    const seq = ++this.podSeq;
    const podDir = join(
      this.dir,
      'pods',
      `${s.namespace}_${s.name}_${hash}${name === base ? '' : name.slice(base.length)}`,
    );
    rmSync(podDir, { recursive: true, force: true });
    const runtime = this.newRuntime(pod, {
      // Kamaji's kube-apiserver image, wherever registrySettings point, is the platform's binary.
      images: {
        ...this.images,
        [apiServerImage(tcp).replace(/:[^:/]*$/, '')]: [this.state.binaries['kube-apiserver']],
      },
      dir: podDir,
      sockDir: join(this.sockRoot, String(seq)),
      logPrefix: name === base ? `${s.namespace}_${s.name}` : `${s.namespace}_${s.name}${name.slice(base.length)}`,
      onChange: () => this.scheduleFlush(s),
      log: (message, fields) => this.log(message, { tcp: key, ...fields }),
    });
    s.replicas.push({ runtime, hash, dir: podDir, conditionTimes: new Map(), wasReady: false });
    this.log('starting pod', { tcp: key, pod: pod.metadata.name, hash });
    runtime.start();
  }

  /** A host port every pod may reach from now on (a TCP's or a StatefulSet's "Service"), running pods included. */
  private addServicePort(port: number): void {
    if (this.outboundPorts.includes(port)) return;
    this.outboundPorts = [...this.outboundPorts, port];
    for (const runtime of this.runtimes) {
      if (runtime.closed) this.runtimes.delete(runtime);
      else
        runtime.addOutboundPort(port).catch((error: unknown) =>
          this.log('cannot bridge a new port into a pod', {
            pod: runtime.name,
            port,
            error: String((error as Error)?.message ?? error),
          }),
        );
    }
  }

  /** What the Job and StatefulSet halves run their pods with; each pod gets its own dir and socket dir. */
  private workloadDeps(kind: string, namespaces: (string | undefined)[]): WorkloadRunnerDeps {
    return {
      kube: this.kube,
      namespaces,
      nodeName: LOCAL_NODE_NAME,
      prepareNamespace: (ns, sa) => this.prepareNamespace(ns, sa),
      runtime: (pod, logPrefix, onChange) => {
        const seq = `w${++this.podSeq}`;
        return this.newRuntime(pod, {
          dir: join(this.dir, kind, `${pod.metadata.namespace}_${pod.metadata.name}_${seq}`),
          sockDir: join(this.sockRoot, seq),
          logPrefix,
          onChange,
          log: (message, fields) => this.log(message, { pod: pod.metadata.name, ...fields }),
        });
      },
      log: (message, fields) => this.log(message, fields),
    };
  }

  /** A pod sandbox runtime with this runner's settings (TCP pods and Job pods alike). */
  newRuntime(
    pod: PodObject,
    o: {
      images?: Record<string, LocalImage>;
      dir: string;
      sockDir: string;
      logPrefix: string;
      onChange: () => void;
      log: (message: string, fields?: Record<string, unknown>) => void;
    },
  ): PodRuntime {
    const apiPort = new URL(this.state.management.url).port;
    for (const runtime of this.runtimes) if (runtime.closed) this.runtimes.delete(runtime);
    const runtime = new PodRuntime({
      kube: this.kube,
      pod,
      images: o.images ?? this.images,
      dir: o.dir,
      sockDir: o.sockDir,
      logDir: this.logDir,
      logPrefix: o.logPrefix,
      podIP: randomLoopbackIp(),
      outboundPorts: this.outboundPorts,
      env: {
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: apiPort,
        KUBERNETES_SERVICE_PORT_HTTPS: apiPort,
      },
      probePeriodCapSeconds: this.options.probePeriodCapSeconds ?? 1,
      backoff: { initialMs: this.options.backoff?.initialMs ?? 10_000, maxMs: this.options.backoff?.maxMs ?? 300_000 },
      volumeResyncMs: this.options.volumeResyncMs ?? 5000,
      volumeOwnership: this.options.volumeOwnership ?? 'kubelet',
      onChange: o.onChange,
      log: o.log,
      claimPath: (claim) => this.claimPath(pod.metadata.namespace, claim),
    });
    this.runtimes.add(runtime);
    return runtime;
  }

  claimPath(namespace: string, claim: string): string {
    return join(this.dir, 'volumes', namespace, claim);
  }

  deploymentPods(namespace: string, name: string): PodRuntime[] {
    return this.deployments?.pods(namespace, name) ?? [];
  }

  statefulSetPort(namespace: string, name: string, containerPort: number): number | undefined {
    return this.statefulSets?.servicePort(namespace, name, containerPort);
  }

  /** PKI Secrets like Kamaji's (reused when they exist, so restarts keep tokens and kubeconfigs valid). */
  private async ensurePki(tcp: TenantControlPlane, s: TcpState): Promise<void> {
    const ns = tcp.metadata.namespace;
    const names = PKI_SECRETS(tcp.metadata.name);
    if (!s.pki) {
      const existing = await Promise.all(
        Object.keys(pkiPaths).map((k) =>
          this.kube.getOrNull<KubeObject & { data?: Record<string, string> }>(
            at(RESOURCES.secret, ns, names[k as keyof typeof pkiPaths]),
          ),
        ),
      );
      const admin = await this.kube.getOrNull<KubeObject & { data?: Record<string, string> }>(
        at(RESOURCES.secret, ns, names.adminKubeconfig),
      );
      const adminPemFile = join(s.dir, 'admin-client.json');
      let adminPem: { cert: string; key: string } | undefined;
      try {
        adminPem = JSON.parse(readFileSync(adminPemFile, 'utf8')) as { cert: string; key: string };
      } catch {
        adminPem = undefined;
      }
      const ca = existing[0]?.data?.['ca.crt'];
      if (existing.every(Boolean) && ca && admin && adminPem) {
        s.pki = { caPem: Buffer.from(ca, 'base64').toString(), adminCertPem: adminPem.cert, adminKeyPem: adminPem.key };
      } else {
        s.pki = await this.generatePki(tcp, s);
        writeFileSync(adminPemFile, JSON.stringify({ cert: s.pki.adminCertPem, key: s.pki.adminKeyPem }), {
          mode: 0o600,
        });
      }
    }
    const server = `https://127.0.0.1:${s.hostPort}`;
    const kubeconfig = stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: tcp.metadata.name, cluster: { server, 'certificate-authority-data': b64(s.pki.caPem) } }],
      users: [
        {
          name: 'kubernetes-admin',
          user: { 'client-certificate-data': b64(s.pki.adminCertPem), 'client-key-data': b64(s.pki.adminKeyPem) },
        },
      ],
      contexts: [
        {
          name: `kubernetes-admin@${tcp.metadata.name}`,
          context: { cluster: tcp.metadata.name, user: 'kubernetes-admin' },
        },
      ],
      'current-context': `kubernetes-admin@${tcp.metadata.name}`,
    });
    writeFileSync(s.adminKubeconfig, kubeconfig, { mode: 0o600 });
    const live = await this.kube.getOrNull<KubeObject & { data?: Record<string, string> }>(
      at(RESOURCES.secret, ns, names.adminKubeconfig),
    );
    if (live?.data?.['admin.conf'] !== b64(kubeconfig)) {
      await this.kube.apply(
        at(RESOURCES.secret, ns, names.adminKubeconfig),
        this.secret(tcp, names.adminKubeconfig, { 'admin.conf': kubeconfig }),
        FIELD_MANAGER,
      );
    }
  }

  private secret(tcp: TenantControlPlane, name: string, data: Record<string, string>): KubeObject {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: tcp.metadata.namespace,
        labels: { [NAME_LABEL]: tcp.metadata.name, 'kamaji.clastix.io/managed-by': FIELD_MANAGER },
      },
      type: 'Opaque',
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    } as KubeObject;
  }

  private async generatePki(tcp: TenantControlPlane, s: TcpState): Promise<TcpPki> {
    const started = Date.now();
    const dir = join(s.dir, 'pki');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const np = tcp.spec.networkProfile ?? {};
    const isIp = (x: string) => /^[\d.]+$/.test(x) || x.includes(':');
    const sans = [...(np.certSANs ?? []), ...(np.address ? [np.address] : [])];
    const serviceIp = firstServiceIp(np.serviceCidrs?.[0] ?? np.serviceCidr ?? '10.96.0.0/16');
    const ca = createCA(dir, 'kubernetes');
    const serving = issueCert(ca, dir, {
      name: 'apiserver',
      commonName: 'kube-apiserver',
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
        tcp.metadata.name,
        `${tcp.metadata.name}.${tcp.metadata.namespace}.svc`,
        ...sans.filter((x) => !isIp(x)),
      ],
      ips: ['127.0.0.1', ...(serviceIp ? [serviceIp] : []), ...sans.filter(isIp)],
      usage: 'server',
    });
    const kubeletClient = issueCert(ca, dir, {
      name: 'apiserver-kubelet-client',
      commonName: 'kube-apiserver-kubelet-client',
      organization: 'kubeadm:cluster-admins',
      usage: 'client',
    });
    const frontProxyCa = createCA(dir, 'front-proxy');
    const frontProxyClient = issueCert(frontProxyCa, dir, {
      name: 'front-proxy-client',
      commonName: 'front-proxy-client',
      usage: 'client',
    });
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const admin = issueCert(ca, dir, {
      name: 'admin',
      commonName: 'kubernetes-admin',
      organization: 'system:masters',
      usage: 'client',
    });
    const names = PKI_SECRETS(tcp.metadata.name);
    const contents: Record<keyof typeof pkiPaths, [string, string]> = {
      ca: [ca.certPem, ca.keyPem],
      apiServer: [serving.certPem, serving.keyPem],
      apiServerKubeletClient: [kubeletClient.certPem, kubeletClient.keyPem],
      frontProxyCA: [frontProxyCa.certPem, frontProxyCa.keyPem],
      frontProxyClient: [frontProxyClient.certPem, frontProxyClient.keyPem],
      sa: [
        sa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ],
    };
    for (const [k, [cert, key]] of Object.entries(contents) as [keyof typeof pkiPaths, [string, string]][]) {
      const [certName, keyName] = pkiPaths[k];
      await this.kube.apply(
        at(RESOURCES.secret, tcp.metadata.namespace, names[k]),
        this.secret(tcp, names[k], { [certName]: cert, [keyName]: key }),
        FIELD_MANAGER,
      );
    }
    this.log('generated PKI', { tcp: `${s.namespace}/${s.name}`, ms: Date.now() - started });
    return { caPem: ca.certPem, adminCertPem: admin.certPem, adminKeyPem: admin.keyPem };
  }

  /** Creates the Pod object; the runner runs what the apiserver admitted (with defaults and the SA token volume). */
  private async createPodObject(
    tcp: TenantControlPlane,
    hash: string,
    name: string,
    first: boolean,
  ): Promise<PodObject> {
    const ns = tcp.metadata.namespace;
    const built = buildPod(tcp, hash, await this.etcdTarget(tcp));
    const wanted = { ...built, metadata: { ...built.metadata, name } };
    // Objects left by a runner that stopped without cleaning up; never those of pods running now.
    if (first) await this.deletePodObjects(ns, tcp.metadata.name);
    await this.prepareNamespace(ns, wanted.spec.serviceAccountName);
    return this.kube.create<PodObject>(at(RESOURCES.pod, ns), wanted);
  }

  /**
   * Kamaji's DataStore handling for an etcd DataStore named by the TCP: its endpoints over TLS,
   * and a client certificate signed by the DataStore CA in `<tcp>-datastore-certs`.
   */
  private async etcdTarget(tcp: TenantControlPlane): Promise<EtcdTarget> {
    if (!tcp.spec.dataStore) return { servers: this.state.etcd.endpoint };
    const ds = await this.kube.getOrNull<DataStore>(DATASTORE(tcp.spec.dataStore));
    if (!ds) throw new Error(`DataStore ${tcp.spec.dataStore} not found`);
    if (ds.spec.driver !== 'etcd')
      throw new Error(`DataStore ${tcp.spec.dataStore}: driver ${ds.spec.driver} is not supported by the local runner`);
    const secretName = datastoreCertsSecret(tcp.metadata.name);
    const existing = await this.kube.getOrNull(at(RESOURCES.secret, tcp.metadata.namespace, secretName));
    if (!existing) {
      const ca = ds.spec.tlsConfig?.certificateAuthority;
      const caCert = await this.contentOf(ca?.certificate);
      const caKey = await this.contentOf(ca?.privateKey);
      const dir = join(this.dir, 'datastore', `${tcp.metadata.namespace}_${tcp.metadata.name}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, 'ca.crt'), caCert);
      writeFileSync(join(dir, 'ca.key'), caKey, { mode: 0o600 });
      const client = issueCert(
        { certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key'), certPem: caCert, keyPem: caKey },
        dir,
        { name: 'client', commonName: `${tcp.metadata.namespace}_${tcp.metadata.name}`, usage: 'client' },
      );
      await this.kube.apply(
        at(RESOURCES.secret, tcp.metadata.namespace, secretName),
        this.secret(tcp, secretName, { 'ca.crt': caCert, 'server.crt': client.certPem, 'server.key': client.keyPem }),
        FIELD_MANAGER,
      );
      rmSync(dir, { recursive: true, force: true });
    }
    return { servers: ds.spec.endpoints.map((e) => `https://${e}`).join(','), certsSecret: secretName };
  }

  private async contentOf(ref: DataStoreContent | undefined): Promise<string> {
    if (ref?.content) return Buffer.from(ref.content, 'base64').toString();
    const secretRef = ref?.secretReference;
    if (!secretRef?.name || !secretRef.namespace)
      throw new Error(
        'DataStore tlsConfig: a certificate or key has neither content nor a secretReference with name and namespace',
      );
    const secret = await this.kube.get<KubeObject & { data?: Record<string, string> }>(
      at(RESOURCES.secret, secretRef.namespace, secretRef.name),
    );
    const value = secret.data?.[secretRef.keyPath];
    if (!value)
      throw new Error(
        `DataStore tlsConfig: Secret ${secretRef.namespace}/${secretRef.name} has no key ${secretRef.keyPath}`,
      );
    return Buffer.from(value, 'base64').toString();
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
      data: { 'ca.crt': this.state.management.caPem },
    } as KubeObject);
  }

  private async createIfMissing(ref: ResourceRef, body: KubeObject): Promise<void> {
    try {
      await this.kube.create(ref, body);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }

  private async deletePodObjects(namespace: string, tcpName: string): Promise<void> {
    const pods = await this.kube.list<PodObject>(at(RESOURCES.pod, namespace), {
      labelSelector: `${NAME_LABEL}=${tcpName}`,
      fieldSelector: `spec.nodeName=${LOCAL_NODE_NAME}`,
    });
    for (const p of pods.items)
      await this.kube.delete(at(RESOURCES.pod, namespace, p.metadata.name), { gracePeriodSeconds: 0 });
  }

  private async stopReplica(s: TcpState, r: Replica, graceMs?: number): Promise<void> {
    const grace = this.options.terminationGraceSeconds;
    s.replicas = s.replicas.filter((x) => x !== r);
    await r.runtime.stop(graceMs ?? (grace === undefined ? undefined : grace * 1000));
    await this.kube
      .delete(at(RESOURCES.pod, s.namespace, r.runtime.name), { gracePeriodSeconds: 0 })
      .catch((error: unknown) => this.log('pod object delete failed', { error: String(error) }));
  }

  private async stopPods(s: TcpState, graceMs?: number): Promise<void> {
    for (const r of [...s.replicas]) await this.stopReplica(s, r, graceMs);
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
    await this.stopPods(s);
    await this.deletePodObjects(s.namespace, s.name).catch(() => undefined);
    for (const secret of Object.values(PKI_SECRETS(s.name)))
      await this.kube.delete(at(RESOURCES.secret, s.namespace, secret));
    if (tcp?.spec.dataStore) {
      await this.kube.delete(at(RESOURCES.secret, s.namespace, datastoreCertsSecret(s.name))).catch(() => undefined);
      this.log('TCP on a DataStore: its data stays in that etcd', {
        tcp: `${s.namespace}/${s.name}`,
        dataStore: tcp.spec.dataStore,
      });
    } else if (this.options.deleteDataOnDelete ?? true) {
      const prefix = tcp ? etcdPrefix(tcp) : `/${s.namespace}_${s.name}`;
      await deleteEtcdPrefix(this.state.etcd.endpoint, `${prefix}/`);
    }
    s.deleted = true;
    s.pki = undefined;
    s.everReady = false;
    rmSync(s.dir, { recursive: true, force: true });
    mkdirSync(s.dir, { recursive: true });
  }

  // ---- status ----

  private scheduleFlush(s: TcpState): void {
    if (s.flushTimer || this.stopping) return;
    s.flushTimer = setTimeout(() => {
      s.flushTimer = undefined;
      const key = `${s.namespace}/${s.name}`;
      s.chain = s.chain
        .then(() => this.syncStatus(s))
        .catch((error: unknown) => {
          if (isNotFound(error)) return; // the TCP is being deleted
          this.log('status update failed', { tcp: key, error: String((error as Error)?.message ?? error) });
          this.scheduleFlush(s);
        });
    }, 100);
  }

  private async syncStatus(s: TcpState): Promise<void> {
    const tcp = this.get(`${s.namespace}/${s.name}`);
    if (!s.replicas.length || !tcp || this.stopping) return;
    let readinessChanged = false;
    for (const r of [...s.replicas]) {
      if (!(await this.syncPodStatus(s, r))) return;
      if (r.runtime.phase === 'Failed') this.enqueue(`${s.namespace}/${s.name}`, 2000);
      if (r.runtime.ready !== r.wasReady) {
        r.wasReady = r.runtime.ready;
        readinessChanged = true;
      }
    }
    // A pod that became ready (or stopped being) may let the rollout go on.
    if (readinessChanged) this.enqueue(`${s.namespace}/${s.name}`);
    // TenantControlPlane status (Kamaji's part), through the status subresource, written only
    // when it differs from what is there.
    const readyReplicas = s.replicas.filter((r) => r.runtime.ready).length;
    if (readyReplicas) s.everReady = true;
    const versionStatus = readyReplicas ? 'Ready' : s.everReady ? 'NotReady' : 'Provisioning';
    const names = PKI_SECRETS(s.name);
    const hash = templateHash(tcp);
    const replicas = tcp.spec.controlPlane?.deployment?.replicas ?? 1;
    const updatedReplicas = s.replicas.filter((r) => r.hash === hash).length;
    const wanted = {
      controlPlaneEndpoint: `127.0.0.1:${s.hostPort}`,
      kubeconfig: { admin: { secretName: names.adminKubeconfig } },
      certificates: {
        ca: { secretName: names.ca },
        apiServer: { secretName: names.apiServer },
        apiServerKubeletClient: { secretName: names.apiServerKubeletClient },
        frontProxyCA: { secretName: names.frontProxyCA },
        frontProxyClient: { secretName: names.frontProxyClient },
        sa: { secretName: names.sa },
      },
      storage: {
        driver: 'etcd',
        dataStoreName: tcp.spec.dataStore ?? 'local-platform-etcd',
        setup: { schema: etcdPrefix(tcp).slice(1) },
      },
      kubernetesResources: {
        version: { version: tcp.spec.kubernetes?.version ?? '', status: versionStatus },
        deployment: {
          name: s.name,
          namespace: s.namespace,
          replicas,
          readyReplicas,
          availableReplicas: readyReplicas,
          updatedReplicas,
          selector: `${NAME_LABEL}=${s.name}`,
        },
      },
    };
    if (!contains(tcp.status ?? {}, wanted)) {
      await this.patchTcpStatus(s, wanted);
      this.log('TCP status', { tcp: `${s.namespace}/${s.name}`, version: wanted.kubernetesResources.version });
    }
  }

  /** One pod's status (the kubelet's part), written only when something changed; false when its object is gone. */
  private async syncPodStatus(s: TcpState, r: Replica): Promise<boolean> {
    const pod = r.runtime;
    const status = pod.status() as { conditions: { type: string; status: string; lastTransitionTime: string }[] };
    const comparable = JSON.stringify({
      ...status,
      conditions: status.conditions.map((c) => ({ ...c, lastTransitionTime: undefined })),
    });
    if (comparable === r.lastPodStatus) return true;
    for (const c of status.conditions) {
      const prev = r.conditionTimes.get(c.type);
      if (prev && prev.status === c.status) c.lastTransitionTime = prev.time;
      else r.conditionTimes.set(c.type, { status: c.status, time: c.lastTransitionTime });
    }
    try {
      await this.kube.patch(
        { ...at(RESOURCES.pod, s.namespace, pod.name), subresource: 'status' },
        { status },
        'merge',
      );
      r.lastPodStatus = comparable;
      this.log('pod status', {
        pod: pod.name,
        phase: pod.phase,
        ready: pod.ready,
        containers: pod.containers
          .map(
            (c) =>
              `${c.spec.name}:${c.running ? 'running' : (c.reason ?? 'stopped')}${c.started ? ',started' : ''}${c.ready ? ',ready' : ''}${c.restartCount ? `,restarts=${c.restartCount}` : ''}`,
          )
          .join(' '),
      });
      return true;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // Somebody deleted the Pod object: like a ReplicaSet, replace the pod.
      if (s.replicas.includes(r)) {
        this.log('pod object deleted; replacing the pod', { pod: pod.name });
        await this.stopReplica(s, r);
        this.enqueue(`${s.namespace}/${s.name}`);
      }
      return false;
    }
  }

  private async syncSleepingStatus(s: TcpState, tcp: TenantControlPlane): Promise<void> {
    const wanted = {
      kubernetesResources: {
        version: { version: tcp.spec.kubernetes?.version ?? '', status: 'Sleeping' },
        deployment: {
          name: s.name,
          namespace: s.namespace,
          replicas: 0,
          readyReplicas: 0,
          availableReplicas: 0,
          updatedReplicas: 0,
          selector: `${NAME_LABEL}=${s.name}`,
        },
      },
    };
    if (!contains(tcp.status ?? {}, wanted)) {
      await this.patchTcpStatus(s, wanted);
      this.log('TCP status', { tcp: `${s.namespace}/${s.name}`, version: wanted.kubernetesResources.version });
    }
  }

  private async patchTcpStatus(s: TcpState, status: unknown): Promise<void> {
    await this.kube.patch({ ...TCP(s.namespace, s.name), subresource: 'status' }, { status }, 'merge');
  }

  // ---- API ----

  pod(namespace: string, tcpName: string): PodInfo | undefined {
    return this.pods(namespace, tcpName).at(-1);
  }

  pods(namespace: string, tcpName: string): PodInfo[] {
    const s = this.tcps.get(`${namespace}/${tcpName}`);
    if (!s?.pki) return [];
    const pki = s.pki;
    return s.replicas.map(({ runtime: pod, hash, dir }) => ({
      namespace,
      tcpName,
      podName: pod.name,
      hash,
      phase: pod.phase,
      ready: pod.ready,
      hostPort: s.hostPort,
      endpoint: `https://127.0.0.1:${s.hostPort}`,
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
    this.stateFor(key)
      .then((s) => {
        s.holdBack = count;
        this.log('rollout hold-back', { tcp: key, count });
        this.enqueue(key);
      })
      .catch((error: unknown) => this.log('cannot track TCP', { tcp: key, error: String(error) }));
  }

  volumePath(namespace: string, tcpName: string, volume: string): string | undefined {
    return this.tcps.get(`${namespace}/${tcpName}`)?.replicas.at(-1)?.runtime.volumePath(volume);
  }

  lastError(namespace: string, tcpName: string): string | undefined {
    return this.tcps.get(`${namespace}/${tcpName}`)?.error;
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
        const s = this.tcps.get(`${namespace}/${tcpName}`);
        return !s || (!s.replicas.length && !s.tearingDown);
      },
      { timeoutMs, intervalMs: 100 },
    ).then(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.barePods?.stop();
    await this.deployments?.stop();
    await this.jobs?.stop();
    await this.statefulSets?.stop();
    const states = [...this.tcps.values()];
    for (const s of states) {
      if (s.retry) clearTimeout(s.retry);
      if (s.flushTimer) clearTimeout(s.flushTimer);
    }
    await Promise.all(
      states.map(async (s) => {
        await s.chain.catch(() => undefined);
        const pods = s.replicas.map((r) => r.runtime);
        s.replicas = [];
        const grace = this.options.terminationGraceSeconds;
        await Promise.all(
          pods.map(async (pod) => {
            await pod.stop(grace === undefined ? 10_000 : grace * 1000);
            // Best effort: a stopped node's pods are gone, and the TCP is no longer served.
            await withTimeout(
              this.kube.delete(at(RESOURCES.pod, s.namespace, pod.name), { gracePeriodSeconds: 0 }),
              3000,
            ).catch(() => undefined);
          }),
        );
        if (pods.length)
          await withTimeout(
            this.patchTcpStatus(s, { kubernetesResources: { version: { status: 'NotReady' } } }),
            3000,
          ).catch(() => undefined);
        // close() waits for open connections (clients keep them alive): end them first.
        for (const c of s.connections) c.destroy();
        await new Promise((r) => s.server.close(r));
      }),
    );
    rmSync(this.sockRoot, { recursive: true, force: true });
    this.log('runner stopped');
  }

  killNow(): void {
    for (const s of this.tcps.values()) for (const r of s.replicas) r.runtime.killNow();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)),
  ]);
}

/** `actual` has every field of `wanted` with equal values. */
function contains(actual: unknown, wanted: unknown): boolean {
  if (wanted !== null && typeof wanted === 'object' && !Array.isArray(wanted)) {
    if (!actual || typeof actual !== 'object') return false;
    return Object.entries(wanted).every(([k, v]) => contains((actual as Record<string, unknown>)[k], v));
  }
  return JSON.stringify(actual) === JSON.stringify(wanted);
}

/** Kamaji's datastore cleanup for an etcd DataStore: every key under the tenant's prefix. */
async function deleteEtcdPrefix(endpoint: string, prefix: string): Promise<void> {
  const bytes = Buffer.from(prefix);
  const end = Buffer.from(bytes);
  end[end.length - 1]! += 1;
  const response = await fetch(`${endpoint}/v3/kv/deleterange`, {
    method: 'POST',
    body: JSON.stringify({ key: bytes.toString('base64'), range_end: end.toString('base64') }),
  });
  if (!response.ok) throw new Error(`etcd deleterange ${prefix}: HTTP ${response.status} ${await response.text()}`);
}

/**
 * Starts the runner: watches TenantControlPlanes on the platform's management apiserver and runs
 * `replicas` pods per TCP, rolled like Kamaji's Deployment (kamaji-rollout.ts). Fails
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
