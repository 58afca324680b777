import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KDC_API_VERSION, OPENBAO_K8S_AUTH_MOUNT, clusterNames, openBaoAccessNames, type KubeObject } from '@kdc/shared';
import { sleep, waitFor } from '../src/wait.ts';
import { condition, createNamespace, kdc, management, openBaoRoot, shardControllers, unique } from './helpers.ts';

type Cluster = KubeObject & { status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } };

describe('a namesake in another shard: the younger cluster says why it waits', () => {
  const kube = management();
  const id = unique('ns');
  const name = unique('dup');
  const stops: (() => Promise<void>)[] = [];
  let older: string;
  let younger: string;

  beforeAll(async () => {
    // This k8-manager's shard holds only the younger cluster: it cannot see the namesake itself.
    stops.push(...(await shardControllers(id)).map((c) => c.stop));
    older = await createNamespace(kube, 'shard-a');
    younger = await createNamespace(kube, 'shard-b');
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  it('KMSPreflight and EncryptionAvailable carry ClusterNameConflict; the OpenBao role stays the older cluster\'s', async () => {
    const spec = { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } };
    await kube.create(kdc(older), { apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name, labels: { 'kdc-e2e/k8m': `other-${id}` } }, spec });
    const role = openBaoAccessNames(older, name).pluginRole;
    await waitFor('the older cluster\'s role', async () => (await openBaoRoot().readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role)) ?? undefined, { timeoutMs: 90_000, intervalMs: 500 });
    await sleep(1100); // creationTimestamp has 1 s resolution: the younger one must be younger
    await kube.create(kdc(younger), { apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name, labels: { 'kdc-e2e/k8m': id } }, spec });

    const c = await waitFor('the younger cluster to say why', async () => {
      const x = await kube.get<Cluster>(kdc(younger, name));
      return condition(x, 'EncryptionAvailable')?.message.includes(`already exists in namespace ${older}`) ? x : undefined;
    }, { timeoutMs: 90_000, intervalMs: 500 });
    expect(condition(c, 'KMSPreflight')).toMatchObject({ status: 'False', reason: 'ClusterNameConflict' });
    expect(condition(c, 'EncryptionAvailable')).toMatchObject({ status: 'False', reason: 'WaitingForPreflight', message: expect.stringContaining('give this cluster another name') });
    const bound = (await openBaoRoot().readAuthRole(OPENBAO_K8S_AUTH_MOUNT, role)) as { bound_service_account_namespaces?: string[] } | null;
    expect(bound?.bound_service_account_namespaces).toEqual([older]);
  }, 200_000);
});
