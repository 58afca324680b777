import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FINALIZERS,
  KDC_API_VERSION,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  openBaoAccessNames,
  kdcClusterSpecSchema,
  parsePolicy,
  renderPolicy,
  transitKeyName,
  type KubeObject,
  at,
  RESOURCES,
  TCP_PATCH,
} from '@kdc/shared';
import {
  WAITING_FOR_KEY_SAFETY_NET_MS,
  accessFingerprint,
  desiredAccess,
  runPreflight,
} from '@kdc/encryption-reconciler';
import { buildAutoKey } from '@kdc/k8-manager';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';
import { ISOLATED_LABEL, startEncryptionReconciler, type ReconcilerProcess } from '../src/encryption-reconciler.ts';
import { metricValue } from '../src/metrics.ts';
import { sleep, waitFor } from '../src/wait.ts';
import {
  controllerNamespace,
  createNamespace,
  management,
  openBaoAnonymous,
  openBaoRoot,
  platform,
  unique,
} from './helpers.ts';

type Cluster = KubeObject & {
  spec: Record<string, any>;
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const kdcRef = (ns: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace: ns, name });
const keyRef = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const preflight = (c: Cluster | null) => c?.status?.conditions?.find((x) => x.type === 'KMSPreflight');
const N = Number(process.env.KDC_STEADY_STATE_N ?? 200);

describe('per-cluster OpenBao policy and role (KdcClusterEncryptionReconciler)', () => {
  let controller: ReconcilerProcess;
  const kube = management();
  const root = openBaoRoot();
  beforeAll(async () => {
    controller = await startEncryptionReconciler(platform(), {
      name: unique('encryption-reconciler-access'),
      leaseNamespace: await controllerNamespace(kube),
    });
  });
  afterAll(async () => {
    await controller?.stop();
  });

  async function encryptedCluster(ns: string, cluster: string, withSa = true, labels: Record<string, string> = {}) {
    const names = clusterNames(cluster);
    // The auto key as k8-manager makes it (labels tie it to the cluster; validation checks them).
    await kube.create(
      keyRef(ns),
      buildAutoKey(
        ns,
        cluster,
        kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } }),
      ),
    );
    if (withSa)
      await kube.create(at(RESOURCES.serviceAccount, ns), {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: names.kmsPluginServiceAccount },
      });
    await kube.create(kdcRef(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels },
      spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
    });
  }
  const preflightOk = (ns: string, cluster: string) =>
    waitFor(
      `${cluster} pre-flight`,
      async () => {
        const c = await kube.getOrNull<Cluster>(kdcRef(ns, cluster));
        return preflight(c)?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );

  /** A controller of its own (the cluster controller only), selecting only objects labelled for `id`. */
  const ownReconciler = async (id: string, env: Record<string, string>) =>
    startEncryptionReconciler(platform(), {
      name: `er-${id}`,
      leaseNamespace: await createNamespace(kube, 'lease'),
      env: { CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}`, CONTROLLERS: 'kdccluster-openbao', ...env },
    });
  const accessRemoved = (bao: ReturnType<typeof openBaoAccessNames>, intervalMs: number) =>
    waitFor(
      'access removed',
      async () =>
        (await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole)) === null &&
        (await root.readPolicy(bao.pluginPolicy)) === null,
      { timeoutMs: 30_000, intervalMs },
    );

  it("writes the policy and role, proves them with the plugin's credentials, repairs drift, removes them on disable", async () => {
    const ns = await createNamespace(kube, 'access');
    const cluster = unique('c');
    const names = clusterNames(cluster);
    const bao = openBaoAccessNames(ns, cluster);
    await encryptedCluster(ns, cluster);
    const ready = await preflightOk(ns, cluster);
    expect(preflight(ready)).toMatchObject({
      reason: 'PreflightSucceeded',
      message: expect.stringMatching(/rotate is denied/),
    });
    expect(ready.metadata?.finalizers).toContain(FINALIZERS.openBaoAccess);
    const key = transitKeyName(ns, names.autoEtcdKey);
    expect(parsePolicy((await root.readPolicy(bao.pluginPolicy))!).map((r) => r.path)).toEqual([
      `transit/encrypt/${key}`,
      `transit/decrypt/${key}`,
      `transit/keys/${key}`,
      'auth/token/lookup-self',
    ]);
    expect(await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole)).toMatchObject({
      bound_service_account_names: [names.kmsPluginServiceAccount],
      bound_service_account_namespaces: [ns],
      token_policies: [bao.pluginPolicy],
    });

    // Out-of-band deletion heals.
    await root.deleteAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole);
    await root.deletePolicy(bao.pluginPolicy);
    await waitFor(
      'role and policy restored',
      async () =>
        (await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole)) !== null &&
        (await root.readPolicy(bao.pluginPolicy)) !== null,
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    // A widened policy is narrowed again.
    await root.writePolicy(
      bao.pluginPolicy,
      renderPolicy([
        ...parsePolicy((await root.readPolicy(bao.pluginPolicy))!),
        { path: `transit/keys/${key}/rotate`, capabilities: ['update'] },
      ]),
    );
    await waitFor(
      'policy narrowed again',
      async () => !(await root.readPolicy(bao.pluginPolicy))!.includes('/rotate'),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    // The event follows the repair (the policy may be seen narrowed before it is recorded).
    await waitFor(
      'an OpenBaoDriftRepaired event',
      async () => {
        const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
          at(RESOURCES.event, ns),
        );
        return events.items.some((e) => e.reason === 'OpenBaoDriftRepaired' && e.involvedObject.name === cluster);
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );

    await kube.patch(kdcRef(ns, cluster), { spec: { encryption: { etcd: { enabled: false } } } });
    await accessRemoved(bao, 500);
    await waitFor(
      'finalizer released',
      async () =>
        !(await kube.get<Cluster>(kdcRef(ns, cluster))).metadata?.finalizers?.includes(FINALIZERS.openBaoAccess),
    );
    expect(await root.transit().readKey(key)).not.toBeNull();
  });

  it('pre-flight fails with a clear reason for a missing capability, a wrong audience, or a missing ServiceAccount', async () => {
    const ns = await createNamespace(kube, 'pf');
    const cluster = unique('c');
    const names = clusterNames(cluster);
    const bao = openBaoAccessNames(ns, cluster);
    const spec = kdcClusterSpecSchema.parse({ version: 'v1.35.0', encryption: { etcd: { enabled: true } } });
    const key = transitKeyName(ns, names.autoEtcdKey);
    const access = desiredAccess(ns, cluster, spec, { etcd: key, backup: key });
    await root.transit().createKey(key);
    const run = () =>
      runPreflight({
        kube,
        anonymous: openBaoAnonymous(),
        namespace: ns,
        cluster,
        access,
        fingerprint: accessFingerprint(ns, cluster, access),
      });
    // Not through the reconciler (it would repair these at once): the pre-flight judged alone.
    await root.writePolicy(bao.pluginPolicy, renderPolicy(access.policies[0]!.rules));
    await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole, access.roles[0]!.body);
    expect(await run()).toMatchObject({ ok: false, reason: 'ServiceAccountMissing' });
    await kube.create(at(RESOURCES.serviceAccount, ns), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: names.kmsPluginServiceAccount },
    });
    expect(await run()).toMatchObject({ ok: true, reason: 'PreflightSucceeded' });

    await root.writePolicy(
      bao.pluginPolicy,
      renderPolicy(access.policies[0]!.rules.filter((r) => !r.path.startsWith('transit/decrypt/'))),
    );
    expect(await run()).toMatchObject({
      ok: false,
      reason: 'CapabilityMissing',
      message: expect.stringMatching(/decrypt on transit key .* 403/),
    });
    await root.writePolicy(
      bao.pluginPolicy,
      renderPolicy([...access.policies[0]!.rules, { path: `transit/keys/${key}/rotate`, capabilities: ['update'] }]),
    );
    expect(await run()).toMatchObject({ ok: false, reason: 'RotateAllowed' });
    expect((await root.transit().readKey(key))!.latestVersion).toBe(1); // asked, never rotated
    await root.writePolicy(bao.pluginPolicy, renderPolicy(access.policies[0]!.rules));
    await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole, {
      ...access.roles[0]!.body,
      audience: 'not-openbao',
    });
    expect(await run()).toMatchObject({ ok: false, reason: 'LoginFailed', message: expect.stringMatching(/403/) });
  });

  it('a cluster waiting for its KMSKey is written as soon as the key is, through the KMSKey watch (no poll, no resync)', async () => {
    // Its own controller for this cluster: a 10-minute resync, so only the watch can bring it back
    // before the 120 s safety net (the file's controller resyncs every 5 s).
    const id = unique('wfk');
    const waiter = await ownReconciler(id, { RESYNC_PERIOD: '10m' });
    try {
      const ns = await createNamespace(kube, 'wfk');
      const cluster = unique('c');
      const names = clusterNames(cluster);
      await kube.create(at(RESOURCES.serviceAccount, ns), {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: names.kmsPluginServiceAccount },
      });
      const spec = { version: 'v1.35.0', encryption: { etcd: { enabled: true } } };
      await kube.create(kdcRef(ns), {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: cluster, labels: { [ISOLATED_LABEL]: id } },
        spec,
      });
      const waiting = await waitFor(
        `${cluster} WaitingForKey`,
        async () => {
          const c = await kube.getOrNull<Cluster>(kdcRef(ns, cluster));
          return preflight(c)?.reason === 'WaitingForKey' ? preflight(c) : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      expect(waiting.message).toContain(`KMSKey ${names.autoEtcdKey} has no Transit key`);

      await kube.create(keyRef(ns), buildAutoKey(ns, cluster, kdcClusterSpecSchema.parse(spec)));
      const budgetMs = 30_000;
      expect(budgetMs).toBeLessThan(WAITING_FOR_KEY_SAFETY_NET_MS / 2); // only the watch can meet it
      const since = Date.now();
      await waitFor(
        `${cluster} pre-flight after its key`,
        async () => preflight(await kube.getOrNull<Cluster>(kdcRef(ns, cluster)))?.status === 'True',
        { timeoutMs: budgetMs, intervalMs: 250 },
      );
      expect(Date.now() - since).toBeLessThan(budgetMs);
    } finally {
      await waiter.stop();
    }
  });

  it('reads the TCP from its cache: attached, enabled: false removes nothing (DisableRequiresMigration); detached, a live read confirms it and the access goes', async () => {
    // Its own controller, selecting only this test's objects, so its reconcile count is this
    // cluster's. The TCP carries the selector's label, as k8-manager gives it its own.
    const id = unique('tcp');
    const er = await ownReconciler(id, { RESYNC_PERIOD: '2s' });
    const tcpReads = (source: 'cache' | 'apiserver') =>
      metricValue(
        er.metricsUrl,
        new RegExp(`kdc_encryption_reconciler_tcp_reads_total\\{source="${source}"\\} (\\d+)`),
      );
    const reconciles = () =>
      metricValue(er.metricsUrl, /kdc_reconcile_total\{controller="kdccluster-openbao",result="success"\} (\d+)/);
    try {
      const ns = await createNamespace(kube, 'tcp-cache');
      const cluster = unique('c');
      const bao = openBaoAccessNames(ns, cluster);
      const tcp = at(RESOURCES.tenantControlPlane, ns, clusterNames(cluster).tenantControlPlane);
      const apiServerArgs = (attached: boolean) => [
        '--v=2',
        ...(attached ? [`${TCP_PATCH.encryptionProviderFlag}=/etc/kubernetes/encryption/config.yaml`] : []),
      ];
      await kube.create(at(RESOURCES.tenantControlPlane, ns), {
        apiVersion: 'kamaji.clastix.io/v1alpha1',
        kind: 'TenantControlPlane',
        metadata: { name: tcp.name, labels: { [ISOLATED_LABEL]: id } },
        spec: {
          controlPlane: {
            deployment: { replicas: 1, extraArgs: { apiServer: apiServerArgs(true) } },
            service: { serviceType: 'ClusterIP' },
          },
          kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
          networkProfile: { port: 6443 },
        },
      });
      await encryptedCluster(ns, cluster, true, { [ISOLATED_LABEL]: id });
      await preflightOk(ns, cluster);
      expect(await tcpReads('cache')).toBeGreaterThan(0);
      expect(await tcpReads('apiserver')).toBe(0);

      await kube.patch(kdcRef(ns, cluster), { spec: { encryption: { etcd: { enabled: false } } } });
      const before = await reconciles();
      await waitFor('three reconciles of the disabled cluster', async () => (await reconciles()) >= before + 3, {
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      expect(await root.readPolicy(bao.pluginPolicy)).not.toBeNull();
      expect(await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, bao.pluginRole)).not.toBeNull();
      expect(await tcpReads('apiserver')).toBe(0);

      // k8-manager's disable migration ends by detaching: then the access goes, after a live read.
      await kube.patch(tcp, {
        spec: { controlPlane: { deployment: { extraArgs: { apiServer: apiServerArgs(false) } } } },
      });
      await accessRemoved(bao, 250);
      expect(await tcpReads('apiserver')).toBeGreaterThanOrEqual(1);
    } finally {
      await er.stop();
    }
  });

  it('reads the policies and roles back on the drift clock, not on every resync; a deleted policy returns after the period', async () => {
    // Its own controller: resync every 2 s, read-back every 20 s. Resyncs that trust the last
    // read-back are counted (the positive control: they happen) while the audit log shows no read.
    const id = unique('drift');
    const driftMs = 20_000;
    const clock = await ownReconciler(id, {
      RESYNC_PERIOD: '2s',
      OPENBAO_DRIFT_CHECK_PERIOD: `${driftMs / 1000}s`,
    });
    // Only the cluster controller runs there: its line is the one with result="skipped".
    const skipped = () =>
      metricValue(clock.metricsUrl, /kdc_openbao_drift_checks_total\{[^}]*result="skipped"[^}]*\} (\d+)/);
    try {
      const ns = await createNamespace(kube, 'drift');
      const cluster = unique('c');
      const bao = openBaoAccessNames(ns, cluster);
      await encryptedCluster(ns, cluster, true, { [ISOLATED_LABEL]: id });
      await preflightOk(ns, cluster);
      const verifiedBy = Date.now();
      const mark = auditMark(platform().openbao.auditLog);
      const before = await skipped();
      await waitFor('three resyncs that trust the read-back', async () => (await skipped()) >= before + 3, {
        timeoutMs: 15_000,
        intervalMs: 250,
      });
      const reads = auditLinesSince(platform().openbao.auditLog, mark).filter(
        (l) =>
          l.includes('"type":"request"') && (l.includes(`/${bao.pluginPolicy}"`) || l.includes(`/${bao.pluginRole}"`)),
      );
      expect(Date.now() - verifiedBy).toBeLessThan(driftMs); // the window is inside one period
      expect(reads).toEqual([]);

      await root.deletePolicy(bao.pluginPolicy);
      const restored = await waitFor(
        'the policy written again after the drift period',
        async () => ((await root.readPolicy(bao.pluginPolicy)) !== null ? Date.now() : undefined),
        { timeoutMs: driftMs + 25_000, intervalMs: 250 },
      );
      // Not before the period was over (verified at most ~1 s before verifiedBy; 2 s resync after it).
      expect(restored - verifiedBy).toBeGreaterThan(driftMs - 2_000);
    } finally {
      await clock.stop();
    }
  });

  it(`steady state: ${N} KMSKeys and ${N} KdcClusters, two resync periods, zero OpenBao writes (counted in the audit log)`, async () => {
    const ns = await createNamespace(kube, 'steady');
    const clusters = Array.from({ length: N }, (_, i) => `s${i}`);
    for (let i = 0; i < N; i += 20) await Promise.all(clusters.slice(i, i + 20).map((c) => encryptedCluster(ns, c)));
    await waitFor(
      'every pre-flight',
      async () => {
        const list = await kube.list<Cluster>(kdcRef(ns));
        return list.items.filter((c) => preflight(c)?.status === 'True').length === N;
      },
      { timeoutMs: 240_000, intervalMs: 2_000 },
    );
    await sleep(6_000); // let in-flight reconciles of the last status writes finish
    const writesIn = (lines: string[]) =>
      lines.filter((line) => {
        if (!line.includes('"type":"request"')) return false;
        const req = JSON.parse(line).request as { operation: string; path: string };
        const ours =
          req.path.includes(`transit/keys/${ns}.`) ||
          req.path.includes(`owners/transit/${ns}.`) ||
          clusters.some((c) => req.path.endsWith(`/tcp-${ns}.${c}`) || req.path.endsWith(`/backup-${ns}.${c}`));
        return ours && req.operation !== 'read' && req.operation !== 'list';
      }).length;
    const mark = auditMark(platform().openbao.auditLog);
    await sleep(2 * 5_000 + 2_000); // two resync periods (RESYNC_PERIOD=5s)
    const window = auditLinesSince(platform().openbao.auditLog, mark);
    expect(writesIn(window)).toBe(0);
    const reads = window.filter((l) => l.includes('"type":"request"') && l.includes(`/tcp-${ns}.s0"`)).length;
    expect(reads).toBeGreaterThan(0); // it did look
  }, 400_000);
});
