import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  KMSKEY_API_VERSION,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  openBaoAccessNames,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { buildEncryptionFields, buildTenantControlPlane, mergeEncryptionFields } from '@kdc/k8-manager';
import { ISOLATED_LABEL, startEncryptionReconciler, type ReconcilerProcess } from '../src/encryption-reconciler.ts';
import { startK8Manager, type K8ManagerProcess } from '../src/k8-manager.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { createNamespace, kdc, management, openBaoRoot, platform, shardControllers, unique } from './helpers.ts';

// SPEC 3.1: an invalid spec is accepted by the apiserver, and then changes nothing at all: no
// TCP change, no KMSKey, no ServiceAccount, no Secret, no OpenBao policy or role. Every case runs
// against the real controllers; the absence of side effects is checked after two resyncs.

type Cluster = KubeObject & {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
};
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const tcpRef = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
const configError = (c: Cluster | null) => c?.status?.conditions?.find((x) => x.type === 'EncryptionConfigError');
const enabled = (etcd: object = {}, rest: object = {}) => ({
  version: 'v1.35.0',
  encryption: { etcd: { enabled: true, ...etcd } },
  ...rest,
});

interface Case {
  reason: string;
  spec: (cluster: string) => object;
  setup?: (ns: string, cluster: string) => Promise<void>;
  annotations?: Record<string, string>;
  isolated?: boolean;
  /** A TCP exists before the cluster: its resourceVersion must not move. */
  existingTcp?: boolean;
}

describe('k8-manager: invalid specs and missing prerequisites change nothing', () => {
  const kube = management();
  const root = openBaoRoot();
  const id = unique('v');
  let ns: string;
  const processes: (ReconcilerProcess | K8ManagerProcess)[] = [];

  const key = async (name: string, spec: object, labels: Record<string, string> = {}) => {
    await kube.create(kkey(ns), { apiVersion: KMSKEY_API_VERSION, kind: 'KMSKey', metadata: { name, labels }, spec });
  };
  const keyReady = (name: string, status = 'True') =>
    waitFor(
      `KMSKey ${name} Ready=${status}`,
      async () => {
        const k = await kube.get<Cluster>(kkey(ns, name));
        return k.status?.conditions?.some((c) => c.type === 'Ready' && c.status === status);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  const tcp = async (cluster: string, owner: boolean, attached: boolean) => {
    const object = buildTenantControlPlane(ns, cluster, { version: 'v1.35.0', controlPlane: { replicas: 1 } });
    if (attached) {
      object.spec.controlPlane.deployment = mergeEncryptionFields(
        object.spec.controlPlane.deployment,
        buildEncryptionFields({
          namespace: ns,
          cluster,
          pluginImage: 'kdc.local/kms-plugin:dev',
          openBaoUrl: platform().openbao.url,
          hasCaBundle: false,
          plugins: [{ slot: 'a', transitKey: `${ns}.${cluster}-etcd` }],
          configHash: 'h',
        }),
        cluster,
      );
    }
    const ownerReferences = owner
      ? [
          {
            apiVersion: 'controlplane.cluster.x-k8s.io/v1alpha1',
            kind: 'KamajiControlPlane',
            name: `${cluster}-kcp`,
            uid: '0b6f2a52-0000-4000-8000-000000000001',
          },
        ]
      : undefined;
    await kube.create(tcpRef(ns), { ...object, metadata: { ...object.metadata, ownerReferences } });
  };

  const cases: Case[] = [
    { reason: 'VersionInvalid', spec: () => enabled({}, { version: '1.35' }) },
    { reason: 'KEKRotationIntervalMissing', spec: () => enabled({ kekRotation: { enabled: true } }) },
    { reason: 'KEKRotationIntervalInvalid', spec: () => enabled({ kekRotation: { enabled: true, interval: '2w' } }) },
    {
      reason: 'KEKRotationIntervalOutOfRange',
      spec: () => enabled({ kekRotation: { enabled: true, interval: '6d' } }),
    },
    {
      reason: 'KEKRotationIntervalOutOfRange',
      spec: () => enabled({ kekRotation: { enabled: true, interval: '731d' } }),
    },
    {
      reason: 'KEKRotationIntervalBelowRetention',
      spec: () => enabled({ kekRotation: { enabled: true, interval: '8d' } }, { backup: { retentionDays: 10 } }),
    },
    { reason: 'KeyRefNotFound', spec: () => enabled({ keyRef: 'does-not-exist' }) },
    { reason: 'KeyRefInvalid', spec: () => enabled({ keyRef: 'other/key' }) },
    { reason: 'KeyRefWrongPurpose', spec: () => enabled({ keyRef: 'app-key' }) },
    { reason: 'KeyRefNotReady', spec: () => enabled({ keyRef: 'refused-key' }) },
    { reason: 'KeyRefInUse', spec: () => enabled({ keyRef: 'shared-key' }) },
    { reason: 'BackupKeyRefNotFound', spec: () => enabled({ backup: { keyRef: 'no-backup-key' } }) },
    { reason: 'BackupKeyRefWrongPurpose', spec: () => enabled({ backup: { keyRef: 'app-key' } }) },
    {
      reason: 'AutoKeyConflict',
      spec: () => enabled(),
      setup: (_ns, c) => key(clusterNames(c).autoEtcdKey, { purpose: 'etcd' }),
    },
    { reason: 'BackupScheduleInvalid', spec: () => enabled({}, { backup: { schedule: 'every night' } }) },
    {
      reason: 'BackupDestinationInvalid',
      spec: () => enabled({}, { backup: { destinationPath: 'https://example.com/x' } }),
    },
    {
      reason: 'ManagedByKamajiControlPlane',
      spec: () => enabled(),
      existingTcp: true,
      setup: (_ns, c) => tcp(c, true, false),
    },
    {
      reason: 'DisableRequiresMigration',
      spec: () => ({ version: 'v1.35.0', encryption: { etcd: { enabled: false } } }),
      existingTcp: true,
      setup: (_ns, c) => tcp(c, false, true),
    },
    {
      reason: 'ForceDisableAnnotationInvalid',
      spec: () => ({ version: 'v1.35.0' }),
      existingTcp: true,
      setup: (_ns, c) => tcp(c, false, true),
      annotations: { 'security.kube-dc.com/encryption-force-disable-confirmed': 'yes please' },
    },
    { reason: 'KMSPluginImageMissing', spec: () => enabled(), isolated: true },
  ];

  beforeAll(async () => {
    ns = await createNamespace(kube, 'invalid');
    const isolatedLease = await createNamespace(kube, 'lease');
    processes.push(...(await shardControllers(id)));
    // A platform without a plugin image: both controllers configured alike, for these clusters only.
    const noImage = { KMS_PLUGIN_IMAGE: '' };
    processes.push(
      await startK8Manager(platform(), {
        name: `k8m-noimage-${id}`,
        leaseNamespace: isolatedLease,
        selector: `${ISOLATED_LABEL}=${id}`,
        env: noImage,
      }),
    );
    processes.push(
      await startEncryptionReconciler(platform(), {
        name: `er-noimage-${id}`,
        leaseNamespace: isolatedLease,
        env: { ...noImage, CLUSTER_SELECTOR: `${ISOLATED_LABEL}=${id}`, CONTROLLERS: 'kdccluster-openbao' },
      }),
    );

    await key('app-key', { purpose: 'application' });
    await key('shared-key', { purpose: 'etcd' });
    await key('refused-key', { purpose: 'application' });
    await Promise.all(['app-key', 'shared-key', 'refused-key'].map((k) => keyReady(k)));
    await kube.patch(kkey(ns, 'refused-key'), { spec: { purpose: 'etcd' } }); // a purpose never changes: Ready=False
    await keyReady('refused-key', 'False');
    // The cluster that already uses shared-key, valid, seen by the same k8-manager.
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'owner-of-shared', labels: { 'kdc-e2e/k8m': id } },
      spec: enabled({ keyRef: 'shared-key' }),
    });
  }, 180_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
  });

  it(`refuses ${cases.length} invalid specs, each with its reason and an actionable message, and writes nothing`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
    const created = await Promise.all(
      cases.map(async (c, i) => {
        const cluster = `bad-${i}`;
        await c.setup?.(ns, cluster);
        const tcpBefore = c.existingTcp
          ? (await kube.get(tcpRef(ns, clusterNames(cluster).tenantControlPlane))).metadata?.resourceVersion
          : undefined;
        const labels: Record<string, string> = c.isolated ? { [ISOLATED_LABEL]: id } : { 'kdc-e2e/k8m': id };
        await kube.create(kdc(ns), {
          apiVersion: KDC_API_VERSION,
          kind: 'KdcCluster',
          metadata: { name: cluster, labels, annotations: c.annotations },
          spec: c.spec(cluster),
        });
        return { ...c, cluster, tcpBefore };
      }),
    );

    for (const c of created) {
      const condition = await waitFor(
        `${c.cluster}: EncryptionConfigError ${c.reason}`,
        async () => {
          const cond = configError(await kube.get<Cluster>(kdc(ns, c.cluster)));
          return cond?.status === 'True' ? cond : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      expect(condition.reason, c.cluster).toBe(c.reason);
      expect(condition.message.length, c.cluster).toBeGreaterThan(30);
      const ready = (await kube.get<Cluster>(kdc(ns, c.cluster))).status?.conditions?.find((x) => x.type === 'Ready');
      expect(ready, c.cluster).toMatchObject({ status: 'False', reason: c.reason });
    }
    await sleep(12_000); // two resync periods of every controller (RESYNC_PERIOD=5s)

    for (const c of created) {
      const names = clusterNames(c.cluster);
      const tcpNow = await kube.getOrNull(tcpRef(ns, names.tenantControlPlane));
      if (c.existingTcp) expect(tcpNow?.metadata?.resourceVersion, `${c.cluster} TCP untouched`).toBe(c.tcpBefore);
      else expect(tcpNow, `${c.cluster} no TCP`).toBeNull();
      if (c.reason !== 'AutoKeyConflict')
        expect(await kube.getOrNull(kkey(ns, names.autoEtcdKey)), `${c.cluster} no KMSKey`).toBeNull();
      expect(
        await kube.getOrNull(at(RESOURCES.serviceAccount, ns, names.kmsPluginServiceAccount)),
        `${c.cluster} no SA`,
      ).toBeNull();
      expect(
        await kube.getOrNull(at(RESOURCES.secret, ns, names.encryptionConfigSecret)),
        `${c.cluster} no Secret`,
      ).toBeNull();
      expect(
        await root.readPolicy(openBaoAccessNames(ns, c.cluster).pluginPolicy),
        `${c.cluster} no policy`,
      ).toBeNull();
      expect(
        await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, openBaoAccessNames(ns, c.cluster).pluginRole),
        `${c.cluster} no role`,
      ).toBeNull();
      expect((await kube.get(kdc(ns, c.cluster))).metadata?.finalizers ?? [], `${c.cluster} no finalizer`).toEqual([]);
    }
    const events = await kube.list<KubeObject & { reason: string; type: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, ns),
    );
    for (const c of created)
      expect(
        events.items.some(
          (e) => e.involvedObject.name === c.cluster && e.reason === 'EncryptionConfigError' && e.type === 'Warning',
        ),
        `${c.cluster} event`,
      ).toBe(true);
    // The valid neighbour went ahead, so the controllers were working all along.
    expect(await kube.getOrNull(tcpRef(ns, 'owner-of-shared-cp'))).not.toBeNull();
  }, 180_000);

  it('heals: fixing the spec clears the error and the cluster proceeds', async () => {
    await kube.patch(kdc(ns, 'bad-1'), {
      spec: { encryption: { etcd: { kekRotation: { enabled: true, interval: '30d' } } } },
    });
    await waitFor(
      'bad-1 valid',
      async () => configError(await kube.get<Cluster>(kdc(ns, 'bad-1')))?.status === 'False',
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const created = await waitFor(
      'auto key created with the rotation',
      () => kube.getOrNull<KubeObject & { spec: { rotation?: { interval?: string } } }>(kkey(ns, 'bad-1-etcd')),
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(created.spec.rotation).toEqual({ enabled: true, interval: '30d' });
  }, 60_000);
});
