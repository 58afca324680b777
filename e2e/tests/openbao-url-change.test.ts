import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterNames, type KdcClusterStatus, type KubeClient, type KubeObject, at, RESOURCES } from '@kdc/shared';
import type { K8ManagerProcess } from '../src/k8-manager.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import {
  requestScan,
  startLifecycleTenant,
  startReader,
  writeSecrets,
  type LifecycleTenant,
} from '../src/lifecycle-tenant.ts';
import { rawRows, readLedger, tenantPrefix } from '../src/tenant-rows.ts';
import { waitFor } from '../src/wait.ts';
import {
  condition,
  controllerNamespace,
  createNamespace,
  kdc,
  management,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

// Issue 12, test 4: the platform reaches OpenBao by another hostname of the same server. The
// kdc2 key_id names the Transit key, not the URL, so nothing has to be re-written: both replicas
// roll onto the new URL one at a time, a reader sees every answer without an error, Encrypted
// never leaves EncryptionCompleted, no migration starts, and raw etcd holds the same key_ids
// before and after; a scan asked for afterwards proves the coverage still complete.

const SECRETS = 100;
type Cluster = KubeObject & {
  status?: KdcClusterStatus & { conditions?: { type: string; status: string; reason: string; message: string }[] };
};

describe('the platform moves to another hostname of the same OpenBao: nothing re-written, nothing unreadable', () => {
  const kube = management();
  const id = unique('url2');
  const cluster = 'shop';
  const names = clusterNames(cluster);
  const port = new URL(platform().openbao.url).port;
  const first = `https://127.0.0.1:${port}`;
  const second = `https://localhost:${port}`;
  let stage: LifecycleTenant;
  let manager: K8ManagerProcess;
  let ns: string;
  let tenant: KubeClient;
  let prefix: string;
  let ledger: Map<string, string>;
  const ours = (name: string) => name.startsWith('s-');
  const get = () => kube.get<Cluster>(kdc(ns, cluster));
  const completed = (since: string) =>
    waitFor(
      'EncryptionCompleted from a scan newer than the change',
      async () => {
        const c = await get();
        const scanned = c.status?.encryption?.coverage?.scannedAt;
        return condition(c, 'Encrypted')?.reason === 'EncryptionCompleted' &&
          scanned &&
          Date.parse(scanned) >= Math.floor(Date.parse(since) / 1000) * 1000
          ? c
          : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );

  beforeAll(async () => {
    ns = await createNamespace(kube, 'url2');
    stage = await startLifecycleTenant({
      state: platform(),
      kube,
      id,
      namespace: ns,
      cluster,
      spec: { version: 'v1.35.0', controlPlane: { replicas: 2 }, encryption: { etcd: { enabled: true } } },
      controllers: async () => {
        const [reconciler, k8m] = await shardControllers(id, { OBSERVE_PERIOD: '3s', OPENBAO_URL: first });
        manager = k8m;
        return [reconciler, { stop: () => manager.stop() }];
      },
    });
    tenant = stage.tenant;
    await writeSecrets(tenant, SECRETS, (i) => `url-${i}`);
    await completed(await requestScan(kube, ns, cluster));
    ledger = await readLedger(tenant, 'secrets', ours);
    prefix = await tenantPrefix(kube, ns, names.tenantControlPlane);
  }, 600_000);

  afterAll(async () => {
    await stage?.stop();
  });

  it('rolls both replicas onto the new URL with every read answered and every row as it was', async () => {
    const rowsBefore = await rawRows(stage.etcdctl, prefix, 'secrets');
    expect(rowsBefore.plaintext).toBe(0);
    const before = await get();
    const migrationEvents = async () =>
      (
        await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(at(RESOURCES.event, ns))
      ).items
        .filter((e) => e.involvedObject.name === cluster && e.reason === 'MigrationStarted')
        .map((e) => e.metadata!.name);
    const eventsBefore = await migrationEvents();
    const podsBefore = stage.runner.pods(ns, names.tenantControlPlane).map((pod) => pod.hash);
    const reader = startReader(async (i) => {
      await tenant.get(at(RESOURCES.secret, 'default', `s-${i % SECRETS}`));
    });
    const reasons = new Set<string>();

    await manager.stop();
    manager = await startK8Manager(platform(), {
      name: `k8m-${id}-2`,
      leaseNamespace: await controllerNamespace(kube),
      selector: `kdc-e2e/k8m=${id}`,
      env: { OBSERVE_PERIOD: '3s', OPENBAO_URL: second },
    });
    // Both replicas replaced, one at a time, and Ready on the new URL.
    await waitFor(
      'both replicas on the new URL',
      async () => {
        reasons.add(condition(await get(), 'Encrypted')?.reason ?? 'none');
        const pods = stage.runner.pods(ns, names.tenantControlPlane);
        return pods.length === 2 && pods.every((pod) => pod.ready && !podsBefore.includes(pod.hash)) ? pods : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 300 },
    );
    const tcp = await kube.get({ ...RESOURCES.tenantControlPlane, namespace: ns, name: names.tenantControlPlane });
    expect(
      tcp.spec.controlPlane.deployment!.additionalInitContainers!.find((c) => c.name === 'kms-plugin')!.args,
    ).toContain(`--openbao-addr=${second}`);

    // A scan asked for now proves the coverage, under the key_ids published before the move.
    const asked = await requestScan(kube, ns, cluster);
    const after = await completed(asked);
    reasons.add(condition(after, 'Encrypted')!.reason);
    const stats = await reader.stop();

    expect([...reasons]).toEqual(['EncryptionCompleted']);
    expect(after.status!.encryption!.coverage).toMatchObject({
      plaintext: 0,
      stale: 0,
      keyIds: before.status!.encryption!.coverage!.keyIds,
    });
    expect(after.status!.encryption!.lastRewrapCompleted).toBe(before.status!.encryption!.lastRewrapCompleted);
    expect(await migrationEvents()).toEqual(eventsBefore);
    const rowsAfter = await rawRows(stage.etcdctl, prefix, 'secrets');
    expect(rowsAfter.byKeyId).toEqual(rowsBefore.byKeyId);
    expect(rowsAfter.plaintext).toBe(0);
    expect(await readLedger(tenant, 'secrets', ours)).toEqual(ledger);
    expect(stats.errors).toEqual([]);
    // When and why a read got no answer, in the failure message.
    expect({ unreachable: stats.unreachable, why: stats.unanswered }).toEqual({ unreachable: 0, why: [] });
    expect(stats.answered).toBeGreaterThan(10);
  }, 600_000);
});
