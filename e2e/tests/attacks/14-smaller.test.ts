import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import {
  status as GrpcStatus,
  credentials,
  makeGenericClientConstructor,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KDC_API_VERSION, TCP_PATCH, clusterNames, createRegistry, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { loadKmsV2 } from '@kdc/kms-plugin';
import { kmsKeyMetrics } from '@kdc/encryption-reconciler';
import { renderChart } from '../../src/chart.ts';
import { LOCAL_IMAGES } from '../../src/images.ts';
import { startKamajiRunner, type KamajiRunner } from '../../src/kamaji-runner.ts';
import { kmsClient, startKmsPlugin, type KmsClient, type KmsPluginProcess } from '../../src/kms.ts';
import { freePort } from '../../src/ports.ts';
import { waitFor } from '../../src/wait.ts';
import { auditLinesSince, auditMark, forEachAuditLineSince } from '../../src/audit-log.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  openBaoRoot,
  platform,
  shardControllers,
  unique,
  type TestCondition,
} from '../helpers.ts';
import { kmsTenant, type KmsTenant } from '../kms-fixture.ts';

// Finding 14, the smaller ones: one describe per item.

/**
 * Items OpenBao was asked to encrypt with `key` in batches, from its audit log: what Encrypt calls
 * sent (they always go as a batch; the plugin's background health probe is a single encrypt).
 */
const encryptItems = new Map<string, number>();
let auditScanned = 0;
function encryptItemsAudited(key: string): number {
  auditScanned = forEachAuditLineSince(platform().openbao.auditLog, auditScanned, (line) => {
    if (!line.includes('"transit/encrypt/')) return;
    const e = JSON.parse(line) as { type: string; request?: { path?: string; data?: { batch_input?: unknown[] } } };
    if (e.type !== 'request' || !e.request?.path?.startsWith('transit/encrypt/')) return;
    const name = e.request.path.slice('transit/encrypt/'.length);
    encryptItems.set(name, (encryptItems.get(name) ?? 0) + (e.request.data?.batch_input?.length ?? 0));
  });
  return encryptItems.get(key) ?? 0;
}

describe('attack 14.1: the plugin refuses at Encrypt a plaintext whose ciphertext Decrypt would refuse', () => {
  let t: KmsTenant;
  let client: KmsClient;
  beforeAll(async () => {
    t = await kmsTenant({ prefix: 'a14-size', startApiserver: false });
    client = kmsClient(t.plugin.socket);
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it('a plaintext over the bound is InvalidArgument before any OpenBao call; the largest accepted one round-trips', async () => {
    // Warm up (login, key read), so the audit count below only sees what Encrypt sends.
    await client.encrypt(randomBytes(32));
    const audited = encryptItemsAudited(t.transitKey);
    const refused: { size: number; code?: number; details?: string }[] = [];
    for (const size of [732, 800, 1000, 1024]) {
      const outcome = await client.encrypt(randomBytes(size)).then(
        () => ({ size }),
        (e: ServiceError) => ({ size, code: e.code, details: e.details }),
      );
      refused.push(outcome);
    }
    expect(refused).toEqual(
      [732, 800, 1000, 1024].map((size) => ({
        size,
        code: GrpcStatus.INVALID_ARGUMENT,
        details: expect.stringMatching(
          /plaintext: is \d+ bytes; at most 731 bytes, so that its ciphertext stays within the 1024 bytes Decrypt accepts/,
        ),
      })),
    );
    expect(encryptItemsAudited(t.transitKey)).toBe(audited);

    // The bound is exact for key version 1: 731 bytes make 1021 bytes of vault:v1:... ciphertext.
    const plaintext = randomBytes(731);
    const { ciphertext, key_id } = await client.encrypt(plaintext);
    expect(ciphertext.length).toBeLessThanOrEqual(1024);
    expect((await client.decrypt({ ciphertext, key_id })).plaintext.equals(plaintext)).toBe(true);
  });
});

/** A TCP proxy to OpenBao that can hold back what the plugin sends, to stall its Transit calls. */
async function stallableProxy(
  target: number,
): Promise<{ port: number; pause(): void; resume(): void; close(): Promise<void> }> {
  let paused = false;
  const held: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port: target, host: '127.0.0.1' });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => (paused ? held.push(() => upstream.write(chunk)) : upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    pause: () => (paused = true),
    resume: () => {
      paused = false;
      for (const send of held.splice(0)) send();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** What OpenBao's file audit device writes for `plaintext` sent as base64 (it HMACs string values). */
async function auditHash(plaintext: Buffer): Promise<string> {
  const { hash } = await openBaoRoot().request<{ hash: string }>('POST', 'sys/audit-hash/file', {
    input: plaintext.toString('base64'),
  });
  return hash;
}

/** Encrypt with a deadline of our choosing (the apiserver sets one on every call). */
function encryptWithDeadline(socket: string) {
  const Ctor = makeGenericClientConstructor(loadKmsV2().service, 'KeyManagementService');
  const client = new Ctor(`unix:${socket}`, credentials.createInsecure(), {
    'grpc.default_authority': 'localhost',
  }) as Client &
    Record<string, (req: unknown, opts: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void>;
  return {
    encrypt: (deadlineMs: number, plaintext = randomBytes(32)) =>
      new Promise<number>((resolve) =>
        client.Encrypt!({ plaintext, uid: 'a14' }, { deadline: Date.now() + deadlineMs }, (error) =>
          resolve(error ? error.code : GrpcStatus.OK),
        ),
      ),
    close: () => client.close(),
  };
}

describe('attack 14.2: the group-commit queue is bounded and drops calls whose deadline passed', () => {
  let t: KmsTenant;
  let proxy: Awaited<ReturnType<typeof stallableProxy>>;
  let plugin: KmsPluginProcess;
  let calls: ReturnType<typeof encryptWithDeadline>;
  const errorsOfClass = async (cls: string) =>
    Number(
      new RegExp(`^kms_plugin_errors_total\\{class="${cls}"\\} (\\d+)`, 'm').exec(
        await (await fetch(`${plugin.metricsUrl}/metrics`)).text(),
      )?.[1] ?? 0,
    );

  beforeAll(async () => {
    t = await kmsTenant({ prefix: 'a14-queue', startApiserver: false });
    proxy = await stallableProxy(Number(new URL(platform().openbao.url).port));
    // A second plugin on the same key, whose OpenBao traffic goes through the proxy; one OpenBao
    // call may take 20 s, so stalled batches stay in flight while the test looks at the queue.
    plugin = await startKmsPlugin({
      dir: t.dir,
      logDir: platform().logDir,
      name: `${t.cluster}-stalled`,
      args: [
        ...t.pluginArgs.filter((a) => !a.startsWith('--openbao-addr=')),
        `--openbao-addr=https://127.0.0.1:${proxy.port}`,
        '--request-timeout=20s',
        '--health-interval=30s',
        '--health-stale-after=60s',
      ],
    });
    calls = encryptWithDeadline(plugin.socket);
    expect(await calls.encrypt(5000)).toBe(GrpcStatus.OK);
  }, 120_000);
  afterAll(async () => {
    calls?.close();
    proxy?.resume();
    await plugin?.stop();
    await proxy?.close();
    await t?.stop();
  });

  const batchesSent = async () =>
    Number(
      /^kms_plugin_transit_batch_size_count\{operation="encrypt"\} (\d+)/m.exec(
        await (await fetch(`${plugin.metricsUrl}/metrics`)).text(),
      )?.[1] ?? 0,
    );

  /** Fills the plugin's four in-flight Transit batches with one stalled call each. */
  async function stallPipe(): Promise<Promise<number>[]> {
    proxy.pause();
    const blockers: Promise<number>[] = [];
    for (let i = 0; i < 4; i++) {
      const sent = await batchesSent();
      blockers.push(calls.encrypt(30_000));
      // The next one only after this one left as a batch of its own (on a busy machine two calls
      // 150 ms apart can still arrive in one event-loop turn and share a batch).
      await waitFor(`blocker ${i + 1} to leave as its own batch`, async () => (await batchesSent()) === sent + 1, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
    }
    return blockers;
  }

  it('beyond the queue limit (default 1024) a call fails at once with RESOURCE_EXHAUSTED; the queued ones complete', async () => {
    const blockers = await stallPipe();
    const codes = new Map<number, number>();
    const flood = Array.from({ length: 1024 + 200 }, () =>
      calls.encrypt(30_000).then((code) => {
        codes.set(code, (codes.get(code) ?? 0) + 1);
        return code;
      }),
    );
    // Fail fast: the excess is refused while OpenBao is still stalled.
    await waitFor(
      '200 calls refused with RESOURCE_EXHAUSTED while OpenBao is stalled',
      async () => (codes.get(GrpcStatus.RESOURCE_EXHAUSTED) ?? 0) >= 200 || undefined,
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(codes.get(GrpcStatus.RESOURCE_EXHAUSTED)).toBe(200);
    expect([...codes.keys()]).toEqual([GrpcStatus.RESOURCE_EXHAUSTED]);
    proxy.resume();
    expect(await Promise.all(blockers)).toEqual([0, 0, 0, 0]);
    await Promise.all(flood);
    expect(codes.get(GrpcStatus.OK)).toBe(1024);
    expect(await errorsOfClass('queue_full')).toBe(200);
  }, 90_000);

  it('a queued call whose deadline passed is not sent to OpenBao (DEADLINE_EXCEEDED), the next one is', async () => {
    const mark = auditMark(platform().openbao.auditLog);
    const blockers = await stallPipe();
    const full = await batchesSent();
    const plaintexts = Array.from({ length: 20 }, () => randomBytes(32));
    const expiring = plaintexts.map((p) => calls.encrypt(600, p));
    expect(new Set(await Promise.all(expiring))).toEqual(new Set([GrpcStatus.DEADLINE_EXCEEDED]));
    // The premise: all four batches were still in flight, so nothing could leave while the calls waited.
    expect(await batchesSent(), 'a batch left while the four blockers were stalled').toBe(full);
    proxy.resume();
    expect(await Promise.all(blockers)).toEqual([0, 0, 0, 0]);
    // A later call leaves after anything still queued: once OpenBao has seen it, it has seen everything the plugin sent.
    const last = randomBytes(32);
    expect(await calls.encrypt(5000, last)).toBe(GrpcStatus.OK);
    // OpenBao's audit log HMACs each plaintext: look for exactly these calls, not a count that
    // unrelated traffic on the key (a retry after a refused token, say) could move.
    const [lastHash, ...expiredHashes] = await Promise.all([last, ...plaintexts].map(auditHash));
    // Only the encrypt requests on this key: asking for a hash is audited with its input too.
    const path = `"path":"transit/encrypt/${t.transitKey}"`;
    let lines: string[] = [];
    await waitFor(
      'the audit log to show the last call',
      async () => {
        lines = auditLinesSince(platform().openbao.auditLog, mark).filter((line) => line.includes(path));
        return lines.some((line) => line.includes(lastHash!));
      },
      { timeoutMs: 10_000 },
    );
    const sent = expiredHashes.filter((hash) => lines.some((line) => line.includes(hash)));
    expect(sent.length, 'expired calls OpenBao was asked to encrypt').toBe(0);
    expect(await errorsOfClass('deadline_exceeded')).toBe(20);
  }, 90_000);
});

/** Listening TCP sockets in the network namespace of process `pid` (what the pod's network offers). */
function listeners(pid: number): string[] {
  const rows: string[] = [];
  for (const file of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${file}`, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue;
      const [hexIp, hexPort] = local.split(':') as [string, string];
      const ip =
        hexIp.length === 8
          ? hexIp
              .match(/../g)!
              .reverse()
              .map((b) => parseInt(b, 16))
              .join('.')
          : /^0+$/.test(hexIp)
            ? '::'
            : `v6:${hexIp}`;
      rows.push(`${ip}:${parseInt(hexPort, 16)}`);
    }
  }
  return rows;
}

describe('attack 14.3: metrics stay on loopback; the pod network serves only probes; controllers bind narrowly', () => {
  const kube = management();
  const id = unique('a14m');
  const cluster = id;
  const names = clusterNames(cluster);
  const stops: { stop(): Promise<void> }[] = [];
  let ns: string;
  let runner: KamajiRunner;
  let podIP: string;
  let sandboxPid: number;
  let probePort: number;

  beforeAll(async () => {
    ns = await createNamespace(kube, 'tenant');
    stops.push(...(await shardControllers(id, { OBSERVE_PERIOD: '2s' })));
    runner = await startKamajiRunner(platform(), { images: LOCAL_IMAGES, namespaces: [ns] });
    stops.push(runner);
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    });
    await waitFor(
      'cluster Ready',
      async () =>
        condition(await kube.get<KubeObject & { status?: { conditions?: TestCondition[] } }>(kdc(ns, cluster)), 'Ready')
          ?.status === 'True',
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    const info = await runner.waitForPod(ns, names.tenantControlPlane);
    sandboxPid = info.sandboxPid!;
    type Pod = KubeObject & {
      status: { podIP: string };
      spec: {
        initContainers: {
          name: string;
          ports?: { name: string; containerPort: number }[];
          readinessProbe: { httpGet: { port: number | string } };
        }[];
      };
    };
    const pod = await kube.get<Pod>(at(RESOURCES.pod, ns, info.podName));
    podIP = pod.status.podIP;
    const plugin = pod.spec.initContainers.find((c) => c.name === TCP_PATCH.pluginContainer)!;
    const port = plugin.readinessProbe.httpGet.port;
    probePort = typeof port === 'number' ? port : plugin.ports!.find((p) => p.name === port)!.containerPort;
  }, 300_000);
  afterAll(async () => {
    for (const s of stops.reverse()) await s.stop();
  });

  it('the plugin port kubelet and k8-manager reach on the pod IP answers health, readiness and the key version, and no metrics', async () => {
    const get = async (path: string) => {
      const res = await fetch(`http://${podIP}:${probePort}${path}`);
      return { status: res.status, body: await res.text() };
    };
    expect(await get('/metrics')).toMatchObject({ status: 404 });
    expect((await get('/metrics')).body).not.toContain('kms_plugin_');
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/key-version')).toEqual({ status: 200, body: '1\n' });
    // And the observer reads the version from there.
    await waitFor(
      'currentKeyVersion 1',
      async () =>
        (await kube.get<KubeObject & { status?: { encryption?: { currentKeyVersion?: number } } }>(kdc(ns, cluster)))
          .status?.encryption?.currentKeyVersion === 1,
      { timeoutMs: 30_000 },
    );
  });

  it('inside the pod, metrics listen on loopback only, and they are served there', async () => {
    const open = listeners(sandboxPid);
    expect(open).toContain(`127.0.0.1:${TCP_PATCH.pluginMetricsPort}`);
    expect(open.filter((l) => l.endsWith(`:${TCP_PATCH.pluginMetricsPort}`))).toEqual([
      `127.0.0.1:${TCP_PATCH.pluginMetricsPort}`,
    ]);
    const inside = execFileSync(
      'nsenter',
      [
        `--net=/proc/${sandboxPid}/ns/net`,
        '--',
        process.execPath,
        '-e',
        `fetch('http://127.0.0.1:${TCP_PATCH.pluginMetricsPort}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`,
      ],
      { encoding: 'utf8' },
    );
    expect(inside).toMatch(/^kms_plugin_status_healthy 1$/m);
    expect(inside).toContain('kms_plugin_request_duration_seconds');
  });

  it('the chart binds controller metrics to the pod IP (downward API), not 0.0.0.0', async () => {
    const objects = await renderChart({ release: 'kdc', namespace: 'kube-dc-system' });
    type Env = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
    const deployments = objects.filter((o) => o.kind === 'Deployment') as (KubeObject & {
      spec: { template: { spec: { containers: { env: Env[] }[] } } };
    })[];
    expect(deployments).toHaveLength(2);
    for (const d of deployments) {
      const env = d.spec.template.spec.containers[0]!.env;
      const podIpVar = env.findIndex((e) => e.valueFrom?.fieldRef?.fieldPath === 'status.podIP');
      expect(podIpVar, d.metadata!.name).toBeGreaterThanOrEqual(0);
      const metrics = env.findIndex((e) => e.name === 'METRICS_ADDR');
      expect(env[metrics]!.value).toBe(`$(${env[podIpVar]!.name}):8080`);
      // Kubernetes expands $(VAR) only from variables defined before it.
      expect(podIpVar).toBeLessThan(metrics);
    }
    const open = await renderChart({
      release: 'kdc',
      namespace: 'kube-dc-system',
      set: { metricsBindAddress: '0.0.0.0' },
    });
    const env = (
      open.find((o) => o.kind === 'Deployment') as KubeObject & {
        spec: { template: { spec: { containers: { env: Env[] }[] } } };
      }
    ).spec.template.spec.containers[0]!.env;
    expect(env.find((e) => e.name === 'METRICS_ADDR')?.value).toBe('0.0.0.0:8080');
  });

  it('controller metrics name no tenant: the rotation gauge is a total, not one series per KMSKey', async () => {
    const registry = createRegistry(false);
    const metrics = kmsKeyMetrics(registry);
    metrics.nextRotation.set({ namespace: 'victim-shop-prod', name: 'payments-etcd' }, Date.now() / 1000 - 7200);
    const text = await registry.metrics();
    expect(text).not.toContain('victim-shop-prod');
    expect(text).not.toContain('payments-etcd');
    expect(text).toMatch(/^kdc_kmskey_rotation_overdue_seconds 7\d{3}(\.\d+)?$/m);
  });
});

describe('attack 14.4: cluster names and backup schedules are checked for what the objects made from them need', () => {
  const kube = management();
  const id = unique('a14n');
  const labels = { 'kdc-e2e/k8m': id };
  const stops: (() => Promise<void>)[] = [];
  let ns: string;
  beforeAll(async () => {
    stops.push(...(await shardControllers(id)).map((c) => c.stop));
    ns = await createNamespace(kube, 'names');
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  type Cluster14 = KubeObject & {
    status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
  };
  const tcp14 = (name: string) => ({
    group: 'kamaji.clastix.io',
    version: 'v1alpha1',
    plural: 'tenantcontrolplanes',
    namespace: ns,
    name: `${name}-cp`,
  });
  const create = (name: string, backup?: Record<string, unknown>) =>
    kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name, labels },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, ...(backup ? { backup } : {}) },
    });
  const configError = (name: string) =>
    waitFor(
      `${name} judged`,
      async () => {
        const c = await kube.getOrNull<Cluster14>(kdc(ns, name));
        const error = condition(c, 'EncryptionConfigError');
        return error && (error.status === 'True' || (await kube.getOrNull(tcp14(name)))) ? error : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

  it('names a Service, a CronJob or a backup path could not carry are refused; what a CronJob accepts is accepted', async () => {
    const tooLong = `a${'b'.repeat(44)}`;
    await create('9lives');
    await create(tooLong);
    await create('weekly', { schedule: '0 2 * * MON' });
    await create('nonsense', { schedule: '99 99 99 99 99' });
    expect(await configError('9lives')).toMatchObject({ status: 'True', reason: 'ClusterNameInvalid' });
    expect(await configError(tooLong)).toMatchObject({
      status: 'True',
      reason: 'ClusterNameInvalid',
      message: expect.stringMatching(/at most 40/),
    });
    expect(await configError('nonsense')).toMatchObject({
      status: 'True',
      reason: 'BackupScheduleInvalid',
      message: expect.stringMatching(/range 0-59/),
    });
    expect((await configError('weekly')).status).toBe('False');
    expect(await kube.getOrNull(tcp14('weekly'))).not.toBeNull();
    for (const name of ['9lives', tooLong, 'nonsense']) expect(await kube.getOrNull(tcp14(name)), name).toBeNull();
  }, 120_000);
});
