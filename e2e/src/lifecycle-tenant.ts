import { join } from 'node:path';
import {
  ANNOTATIONS,
  KDC_API_VERSION,
  KMS_PLUGIN_CONTAINERS,
  KubeClient,
  clusterNames,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { LOCAL_IMAGES } from './images.ts';
import { startKamajiRunner, templateHash, type KamajiRunner } from './kamaji-runner.ts';
import type { LocalImage } from './kubelet/image.ts';

import type { PlatformState } from './platform.ts';
import { ETCD_IMAGE, TCP, dedicatedEtcdDataStore } from './restore-fixture.ts';
import { dataStoreAccess } from './tenant-rows.ts';
import { waitFor } from './wait.ts';

// The stage of the data-lifecycle tests: one KdcCluster on a DataStore of its own (so raw etcd
// holds its rows alone and etcdctl reads them with the DataStore's client certificate), the local
// Kamaji runner for its namespace, both controllers sharded to it, and a client of its tenant
// apiserver once that answers. And the reader those tests run through every change.

export interface LifecycleTenant {
  namespace: string;
  runner: KamajiRunner;
  /** The tenant apiserver with the admin kubeconfig Kamaji wrote. */
  tenant: KubeClient;
  etcdctl: (...args: string[]) => Promise<string>;
  stop(): Promise<void>;
}

export async function startLifecycleTenant(input: {
  state: PlatformState;
  kube: KubeClient;
  /** unique('...'): names the DataStore, the controllers' shard and the work dir. */
  id: string;
  namespace: string;
  cluster: string;
  /** The KdcCluster spec without dataStore (added) and backup (off unless given). */
  spec: Record<string, unknown>;
  /** Starts the controllers for the cluster (labelled `kdc-e2e/k8m=<id>`): the tests' shardControllers. */
  controllers: () => Promise<{ stop(): Promise<void> }[]>;
  /** Runs before the KdcCluster is created (KMSKeys it names, say). */
  before?: () => Promise<void>;
  /** More entries for the runner's image table (the shipped images, say). */
  images?: Record<string, LocalImage>;
}): Promise<LifecycleTenant> {
  const { state, kube, id, namespace } = input;
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const dir = join(state.dir, id);
    const dataStore = `ds-${id}`;
    const runner = await startKamajiRunner(state, {
      images: { ...LOCAL_IMAGES, [ETCD_IMAGE]: [state.binaries.etcd], ...input.images },
      namespaces: [namespace],
    });
    stops.push(
      () => runner.stop(),
      () =>
        kube.delete(at(RESOURCES.dataStore, undefined, dataStore)).then(
          () => undefined,
          () => undefined,
        ),
    );
    const port = await dedicatedEtcdDataStore({ kube, runner, ns: namespace, dir, sts: `${id}-etcd`, dataStore });
    const { etcdctl } = await dataStoreAccess({ kube, etcdctl: state.binaries.etcdctl, dataStore, port, dir });
    for (const controller of await input.controllers()) stops.push(() => controller.stop());
    await input.before?.();
    await kube.create(
      { ...RESOURCES.kdcCluster, namespace },
      {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: input.cluster, labels: { 'kdc-e2e/k8m': id } },
        spec: { backup: { enabled: false }, ...input.spec, dataStore },
      },
    );
    const names = clusterNames(input.cluster);
    const admin = await waitFor(
      'the admin kubeconfig',
      async () =>
        (await kube.getOrNull<KubeObject & { data: Record<string, string> }>(
          at(RESOURCES.secret, namespace, `${names.tenantControlPlane}-admin-kubeconfig`),
        )) ?? undefined,
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    const tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    await waitFor(
      'the tenant apiserver answering',
      async () =>
        (await tenant.getOrNull(at(RESOURCES.namespace, undefined, 'default')).catch(() => null)) !== null || undefined,
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    await settled({ kube, runner, namespace, tcpName: names.tenantControlPlane, spec: input.spec });
    return { namespace, runner, tenant, etcdctl, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}

/**
 * Waits out the rollout that attaching the plugin starts: the TCP is created first and patched
 * once the key is proven, so the tenant answers on a pod that is about to go. A test that wrote
 * then would race that replacement (a connection to a stopping apiserver fails before TLS); the
 * stage is ready once every replica runs the TCP's current template and is Ready.
 */
async function settled(input: {
  kube: KubeClient;
  runner: KamajiRunner;
  namespace: string;
  tcpName: string;
  spec: Record<string, unknown>;
}): Promise<void> {
  const spec = input.spec as { controlPlane?: { replicas?: number }; encryption?: { etcd?: { enabled?: boolean } } };
  const replicas = spec.controlPlane?.replicas ?? 1;
  await waitFor(
    'every control-plane replica Ready on the current template',
    async () => {
      const tcp = await input.kube.get(TCP(input.namespace, input.tcpName));
      const attached = (tcp.spec.controlPlane?.deployment?.additionalInitContainers ?? []).some((c) =>
        KMS_PLUGIN_CONTAINERS.includes(c.name),
      );
      if (spec.encryption?.etcd?.enabled && !attached) return undefined;
      const hash = templateHash(tcp);
      const pods = input.runner.pods(input.namespace, input.tcpName);
      return (pods.length === replicas && pods.every((pod) => pod.ready && pod.hash === hash)) || undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
}

/**
 * Asks k8-manager for a coverage scan now (the rewrap annotation: with no stale row it scans and
 * re-writes nothing). A steady cluster scans only when something changed, so a test that wrote
 * rows after the enable migration ended asks for the scan that counts them. Returns the time
 * asked, in the seconds `scannedAt` has.
 */
export async function requestScan(kube: KubeClient, namespace: string, cluster: string): Promise<string> {
  const asked = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await kube.patch(
    { ...RESOURCES.kdcCluster, namespace, name: cluster },
    { metadata: { annotations: { [ANNOTATIONS.rewrapRequested]: asked } } },
  );
  return asked;
}

/** Writes `count` Secrets `s-<i>` into the tenant's default namespace, 50 at a time. */
export async function writeSecrets(tenant: KubeClient, count: number, value: (i: number) => string): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        tenant.create(at(RESOURCES.secret, 'default'), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `s-${i + j}` },
          data: { v: Buffer.from(value(i + j)).toString('base64') },
        }),
      ),
    );
  }
}

export interface ReadStats {
  answered: number;
  /** HTTP errors: a request the tenant apiserver answered with a failure (a row it could not read, say). */
  errors: string[];
  /** No answer at all: nothing listened (the one replica restarting for a new config). */
  unreachable: number;
  /** When and why the first few requests got no answer (the error class and message, never a body). */
  unanswered: string[];
}

/** Runs `read` every 200 ms until stopped, counting answers, HTTP errors and unanswered requests apart. */
export function startReader(read: (round: number) => Promise<void>): { stats: ReadStats; stop(): Promise<ReadStats> } {
  const stats: ReadStats = { answered: 0, errors: [], unreachable: 0, unanswered: [] };
  let running = true;
  const loop = (async () => {
    for (let round = 0; running; round++) {
      try {
        await read(round);
        stats.answered++;
      } catch (error) {
        const status = (error as { status?: number }).status;
        if (status) stats.errors.push(`HTTP ${status}: ${(error as Error).message.slice(0, 200)}`);
        else {
          stats.unreachable++;
          if (stats.unanswered.length < 5)
            stats.unanswered.push(`${new Date().toISOString()} ${(error as Error).message.slice(0, 120)}`);
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await loop;
      return stats;
    },
  };
}
