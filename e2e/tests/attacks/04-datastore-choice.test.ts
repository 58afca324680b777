import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANNOTATIONS, KDC_API_VERSION, clusterNames, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { STATEFULSET } from '../../src/controllers/statefulsets.ts';
import { createCA } from '../../src/pki.ts';
import { conditionOf, restoreState, startRestoreFixture, type RestoreFixture } from '../../src/restore-fixture.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import {
  condition,
  createNamespace,
  DATASTORE,
  kdc,
  management,
  platform,
  shardControllers,
  unique,
} from '../helpers.ts';

// Finding 4: a tenant could name any DataStore in spec.dataStore, a victim's dedicated etcd
// included (its rows then share that etcd, and the victim's restores are blocked as shared).
// DataStores are granted by the platform, per namespace.
//
// Finding 4 (restore part): a DataStore a neighbour may point at can lose its etcd StatefulSet
// (or stop being this tenant's) in the middle of a restore. The state machine used to scale a
// StatefulSet it no longer had, PATCHing the StatefulSet collection URL on every retry, with the
// tenant left at 0 replicas. It must never act on a missing object: a clear Failed reason instead.

describe('attack 04 (restore): the etcd StatefulSet disappears in the middle of a restore', () => {
  let f: RestoreFixture;
  let backup: string;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), {
      id: unique('a04r'),
      prefix: 'tenant',
      controllers: (id, env) => shardControllers(id, env),
    });
    backup = await f.backupNow();
  }, 420_000);
  afterAll(async () => {
    await f?.stop();
  });

  it('ends Failed naming the missing StatefulSet, without ever patching what is not there', async () => {
    await f.requestRestore(backup);
    // The tenant is stopped and the restore Job runs: now the StatefulSet goes away.
    await waitFor('RestoringSnapshot', async () => restoreState(await f.get()) === 'RestoringSnapshot', {
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    await f.kube.delete(STATEFULSET(f.ns, f.sts));

    const ended = await waitFor(
      'the restore to end',
      async () => {
        const c = await f.get();
        const ready = conditionOf(c, 'RestoreReady');
        return ready && ready.reason !== 'RestoreInProgress' ? c : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250 },
    ).catch(async (error: Error) => {
      const c = await f.get();
      throw new Error(
        `${error.message}; state ${restoreState(c)}, RestoreReady ${JSON.stringify(conditionOf(c, 'RestoreReady'))}`,
      );
    });
    expect(restoreState(ended)).toBe('Failed');
    expect(conditionOf(ended, 'RestoreReady')).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: expect.stringMatching(new RegExp(`\\(EtcdStatefulSetMissing\\): .*StatefulSet ${f.sts}`)),
    });
    // Nothing was written to a StatefulSet collection: the apiserver would have refused it.
    const log = readFileSync(join(platform().logDir, `k8m-${f.id}.log`), 'utf8');
    const refused = log
      .split('\n')
      .filter((l) => l.includes(`${f.ns}/${f.cluster}`) && / 405 |does not allow this method|MethodNotAllowed/.test(l));
    expect(refused).toEqual([]);
  }, 300_000);
});

type Cluster04 = KubeObject & {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const tcp04 = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
const pem = (text: string) => Buffer.from(text).toString('base64');

describe("attack 04 (grant): a tenant cannot put its control plane on another tenant's DataStore", () => {
  const kube = management();
  const id = unique('a04g');
  const labels = { 'kdc-e2e/k8m': id };
  const stops: (() => Promise<void>)[] = [];
  let victimNs: string;
  let attackerNs: string;
  const dedicated = unique('victim-ds');
  const pool = unique('pool-ds');

  beforeAll(async () => {
    stops.push(...(await shardControllers(id)).map((c) => c.stop));
    victimNs = await createNamespace(kube, 'victim');
    attackerNs = await createNamespace(kube, 'attacker');
    // Only the platform writes DataStores (cluster-scoped): a dedicated one for the victim, a shared pool.
    const ca = createCA(join(platform().dir, unique('a04-pki')), 'a04');
    const tls = {
      certificateAuthority: { certificate: { content: pem(ca.certPem) }, privateKey: { content: pem(ca.keyPem) } },
      clientCertificate: { certificate: { content: pem(ca.certPem) }, privateKey: { content: pem(ca.keyPem) } },
    };
    for (const [name, allowed] of [
      [dedicated, victimNs],
      [pool, '*'],
    ] as const) {
      await kube.create(DATASTORE(), {
        apiVersion: 'kamaji.clastix.io/v1alpha1',
        kind: 'DataStore',
        metadata: { name, annotations: { [ANNOTATIONS.allowedNamespaces]: allowed } },
        spec: { driver: 'etcd', endpoints: ['127.0.0.1:2379'], tlsConfig: tls },
      });
    }
  }, 120_000);
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    for (const name of [dedicated, pool]) await kube.delete(DATASTORE(name)).catch(() => undefined);
  });

  const cluster = (ns: string, name: string, dataStore: string) =>
    kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name, labels },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, dataStore },
    });
  const refusal = (ns: string, name: string) =>
    waitFor(
      `${ns}/${name} refused`,
      async () => {
        const c = condition(await kube.getOrNull<Cluster04>(kdc(ns, name)), 'EncryptionConfigError');
        return c?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

  it("naming the victim's dedicated DataStore, or one that does not exist, is refused with no side effect; granted ones work", async () => {
    await cluster(attackerNs, 'squat', dedicated);
    await cluster(attackerNs, 'ghost', unique('no-such-ds'));
    await cluster(victimNs, 'own', dedicated); // positive control: granted to the victim
    await cluster(attackerNs, 'pooled', pool); // positive control: a shared pool
    expect(await refusal(attackerNs, 'squat')).toMatchObject({
      reason: 'DataStoreNotAllowed',
      message: expect.stringContaining(`not granted to namespace ${attackerNs}`),
    });
    expect(await refusal(attackerNs, 'ghost')).toMatchObject({ reason: 'DataStoreNotFound' });
    for (const [ns, name] of [
      [victimNs, 'own'],
      [attackerNs, 'pooled'],
    ] as const) {
      const created = await waitFor(
        `${ns}/${name} TCP`,
        () =>
          kube.getOrNull<KubeObject & { spec: { dataStore?: string } }>(
            tcp04(ns, clusterNames(name).tenantControlPlane),
          ),
        { timeoutMs: 60_000 },
      );
      expect(created.spec.dataStore).toBe(name === 'own' ? dedicated : pool);
    }
    await sleep(6_000); // a resync of every controller (RESYNC_PERIOD=5s): still nothing
    for (const name of ['squat', 'ghost'])
      expect(await kube.getOrNull(tcp04(attackerNs, clusterNames(name).tenantControlPlane)), name).toBeNull();
    const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, attackerNs),
    );
    expect(events.items.some((e) => e.reason === 'EncryptionConfigError' && e.involvedObject.name === 'squat')).toBe(
      true,
    );
  }, 180_000);
});
