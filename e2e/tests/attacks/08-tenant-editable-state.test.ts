import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  KMSKEY_API_VERSION,
  KubeClient,
  SECURITY_GROUP,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { CONTROLLER_RELEASE } from '../../src/chart.ts';
import { startEncryptionReconciler, type ReconcilerProcess } from '../../src/encryption-reconciler.ts';
import { JOB } from '../../src/controllers/jobs.ts';
import { STATEFULSET } from '../../src/controllers/statefulsets.ts';
import { conditionOf, restoreState, startRestoreFixture, TCP, type RestoreFixture } from '../../src/restore-fixture.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import {
  controllerNamespace,
  createNamespace,
  management,
  openBaoRoot,
  platform,
  serviceAccountToken,
  shardControllers,
  unique,
} from '../helpers.ts';

// Finding 8: state the controllers decide on must live where the tenant cannot write. The KMSKey
// purpose lock was an annotation and status.scheduledDeletion chose when a key was destroyed; the
// chart shipped no tenant role, so nothing said that a project owner may not write status.
//
// Finding 8 (restore part): kube-dc.com/restore-state and restore-state-since are annotations the
// tenant writes. The restore state machine trusted them, so a tenant could start a restore in
// RestoringSnapshot: the restore Job ran with a key Validating never saw (a foreign, missing or
// plaintext backup), without draining the control plane or stopping etcd. The controller's state
// must live where the tenant cannot write (status); the annotations only show it.

describe('attack 08 (restore): a tenant writes the restore state annotations', () => {
  let f: RestoreFixture;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), {
      id: unique('a08r'),
      prefix: 'tenant',
      controllers: (id, env) => shardControllers(id, env),
    });
  }, 420_000);
  afterAll(async () => {
    await f?.stop();
  });

  it('a request that claims to be past Validating is validated from scratch, and nothing is touched', async () => {
    const missing = `${f.cluster}/${f.cluster}-20200101T000000Z/`;
    const long = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await f.requestRestore(missing, {
      [ANNOTATIONS.restoreState]: 'RestoringSnapshot',
      [ANNOTATIONS.restoreStateSince]: long,
    });

    // Watch for the restore Job and the states shown until the restore has ended.
    const seen: string[] = [];
    let job = false;
    const deadline = Date.now() + 120_000;
    let ended: Awaited<ReturnType<typeof f.get>> | undefined;
    while (Date.now() < deadline) {
      job ||= (await f.kube.getOrNull(JOB(f.ns, f.names.restoreJob))) !== null;
      const c = await f.get();
      const state = restoreState(c);
      if (state && seen.at(-1) !== state) seen.push(state);
      const ready = conditionOf(c, 'RestoreReady');
      if ((state === 'Failed' || state === 'Succeeded') && ready && ready.reason !== 'RestoreInProgress') {
        ended = c;
        break;
      }
      await sleep(100);
    }
    expect(job, `a restore Job ran for a key nobody validated (states shown: ${seen.join(' -> ')})`).toBe(false);
    expect(ended, `the restore did not end (states shown: ${seen.join(' -> ')})`).toBeDefined();
    expect(restoreState(ended!)).toBe('Failed');
    expect(conditionOf(ended, 'RestoreReady')).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: expect.stringContaining('(BackupNotFound)'),
    });
    expect(
      seen.filter((s) => ['DrainingControlPlane', 'StoppingEtcd', 'StartingEtcd', 'StartingControlPlane'].includes(s)),
    ).toEqual([]);
    // The annotation shows the controller's state, not the tenant's.
    expect(ended!.metadata?.annotations?.[ANNOTATIONS.restoreState]).toBe('Failed');
    const tcp = await f.kube.get<{ spec: { controlPlane: { deployment?: { replicas?: number } } } }>(
      TCP(f.ns, f.names.tenantControlPlane),
    );
    expect(tcp.spec.controlPlane.deployment?.replicas).toBe(1);
    expect((await f.kube.get<{ spec: { replicas: number } }>(STATEFULSET(f.ns, f.sts))).spec.replicas).toBe(1);
  }, 240_000);
});

type Key = KubeObject & {
  status?: { keyId?: string; conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const readyOf = (k: Key | null | undefined) => k?.status?.conditions?.find((c) => c.type === 'Ready');

/** A client that authenticates with `token` to the management apiserver (server and CA from the admin kubeconfig). */
function clientAs(token: string): KubeClient {
  const admin = KubeClient.fromFile(platform().management.kubeconfig);
  const cluster = admin.config.getCurrentCluster()!;
  const ca = cluster.caData ?? '';
  return KubeClient.fromString(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'tenant',
      clusters: [{ name: 'm', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
      users: [{ name: 'tenant', user: { token } }],
      contexts: [{ name: 'tenant', context: { cluster: 'm', user: 'tenant' } }],
    }),
  );
}

describe('attack 08 (KMSKey and RBAC): what the controllers decide on is not where the tenant writes', () => {
  const kube = management();
  const bao = openBaoRoot();
  let controller: ReconcilerProcess;
  let ns: string;
  let tenant: KubeClient;

  beforeAll(async () => {
    controller = await startEncryptionReconciler(platform(), {
      name: unique('er-attack08'),
      leaseNamespace: await controllerNamespace(kube),
    });
    ns = await createNamespace(kube, 'owner');
    // A project owner, bound in their namespace to the chart's tenant role (the controllers' install
    // applied it). In a real cluster it is aggregated into `admin`; this platform runs no
    // kube-controller-manager, which does the aggregating, so the role is bound directly.
    await kube.create(at(RESOURCES.serviceAccount, ns), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'owner' },
    });
    await kube.create(
      { ...RESOURCES.roleBinding, namespace: ns },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'owner-kdc' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: `${CONTROLLER_RELEASE.name}-tenant-edit`,
        },
        subjects: [{ kind: 'ServiceAccount', name: 'owner', namespace: ns }],
      },
    );
    tenant = clientAs(await serviceAccountToken(kube, ns, 'owner', [], 3600));
  }, 120_000);
  afterAll(async () => {
    await controller?.stop();
  });

  const review = async (attributes: Record<string, string>) =>
    (
      await kube.post<{ status: { allowed: boolean } }>(
        { group: 'authorization.k8s.io', version: 'v1', plural: 'subjectaccessreviews' },
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `system:serviceaccount:${ns}:owner`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
            resourceAttributes: attributes,
          },
        },
      )
    ).status.allowed;

  it("the chart's tenant role: a project owner manages KdcClusters and KMSKeys, never their status or finalizers (SubjectAccessReview and real requests)", async () => {
    const allowed = { verb: 'create', namespace: ns };
    for (const [group, resource] of [
      ['k8s.kube-dc.com', 'kdcclusters'],
      ['security.kube-dc.com', 'kmskeys'],
    ] as const) {
      expect(await review({ ...allowed, group, resource }), `create ${resource}`).toBe(true);
      for (const verb of ['update', 'patch']) {
        expect(
          await review({ verb, group, resource, subresource: 'status', namespace: ns }),
          `${verb} ${resource}/status`,
        ).toBe(false);
        expect(
          await review({ verb, group, resource, subresource: 'finalizers', namespace: ns }),
          `${verb} ${resource}/finalizers`,
        ).toBe(false);
      }
      expect(
        await review({ verb: 'create', group, resource, namespace: 'default' }),
        `${resource} in another namespace`,
      ).toBe(false);
    }
    expect(
      await review({ verb: 'get', resource: 'configmaps', namespace: 'kube-dc-system' }),
      "the controllers' cleanup tasks",
    ).toBe(false);
    expect(
      await review({ verb: 'update', group: 'kamaji.clastix.io', resource: 'datastores', name: 'x' }),
      'DataStore grants',
    ).toBe(false);

    // Real requests with the owner's token.
    const key = await tenant.create<KubeObject>(kkey(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'mine' },
      spec: { purpose: 'etcd' },
    });
    await expect(
      tenant.request('PUT', `/apis/${SECURITY_GROUP}/v1alpha1/namespaces/${ns}/kmskeys/mine/status`, {
        body: { ...key, status: { keyId: 'transit/keys/victim.key' } },
      }),
    ).rejects.toMatchObject({ status: 403 });
    await expect(
      tenant.create(at(RESOURCES.configMap, 'kube-dc-system'), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'kdc-cleanup-key-forged' },
        data: {},
      }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it("the purpose lock is OpenBao's record: editing the annotation and the spec does not re-purpose a key", async () => {
    await kube.create(kkey(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'etcd-only' },
      spec: { purpose: 'etcd' },
    });
    await waitFor('Ready', async () => readyOf(await kube.getOrNull<Key>(kkey(ns, 'etcd-only')))?.status === 'True', {
      timeoutMs: 60_000,
    });
    // The old lock was this annotation; the tenant (whose role may edit KMSKeys, first test)
    // rewrites it together with the spec. Sent as admin so the attack also runs on the code before
    // the fix, which shipped no tenant role.
    await kube.patch(kkey(ns, 'etcd-only'), {
      metadata: { annotations: { [ANNOTATIONS.boundPurpose]: 'application' } },
      spec: { purpose: 'application' },
    });
    const refused = await waitFor(
      'the purpose change refused',
      async () => {
        const c = readyOf(await kube.getOrNull<Key>(kkey(ns, 'etcd-only')));
        return c?.reason === 'PurposeChangeRefused' ? c : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(refused).toMatchObject({ status: 'False', message: expect.stringMatching(/created for purpose etcd/) });
  });

  it("a scheduled destruction runs on the controller's clock, not on a status field", async () => {
    await kube.create(kkey(ns), {
      apiVersion: KMSKEY_API_VERSION,
      kind: 'KMSKey',
      metadata: { name: 'countdown' },
      spec: { deletionPolicy: 'schedule' },
    });
    const key = await waitFor(
      'Ready',
      async () => {
        const k = await kube.getOrNull<Key>(kkey(ns, 'countdown'));
        return readyOf(k)?.status === 'True' ? k! : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const transitKey = key.status!.keyId!.split('/').pop()!;
    const deleted = Date.now();
    await kube.delete(kkey(ns, 'countdown'));
    // The old controller kept the object Terminating and destroyed the key when
    // status.scheduledDeletion passed: whoever can write status chose the moment.
    for (let i = 0; i < 10; i++) {
      const k = await kube.getOrNull<Key>(kkey(ns, 'countdown'));
      if (!k) break;
      await kube
        .request('PUT', `/apis/${SECURITY_GROUP}/v1alpha1/namespaces/${ns}/kmskeys/countdown/status`, {
          body: { ...k, status: { ...k.status, scheduledDeletion: '2000-01-01T00:00:00Z' } },
        })
        .catch(() => undefined);
      await sleep(500);
    }
    await sleep(5_000);
    expect(Date.now() - deleted).toBeLessThan(19_000);
    expect(await bao.transit().readKey(transitKey), 'destroyed before its 20 s countdown').not.toBeNull();
    await waitFor(
      'destroyed after the countdown (positive control)',
      async () => (await bao.transit().readKey(transitKey)) === null,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    expect(Date.now() - deleted).toBeGreaterThanOrEqual(19_000);
  }, 120_000);
});
