import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS,
  KDC_API_VERSION,
  KMS_STORED_PREFIX,
  KubeClient,
  TCP_PATCH,
  clusterNames,
  transitKeyName,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { readRaw } from '../src/etcd-raw.ts';
import { LOCAL_IMAGES } from '../src/images.ts';
import type { K8ManagerProcess } from '../src/k8-manager.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { metricSum } from '../src/metrics.ts';
import { sleep, waitFor } from '../src/wait.ts';
import {
  condition,
  createNamespace,
  kdc,
  management,
  openBaoRoot,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

type Cluster = KubeObject & {
  spec: Record<string, any>;
  status?: {
    phase?: string;
    encryption?: Record<string, any>;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
};
const kkey = (ns: string, name?: string) => ({ ...RESOURCES.kmsKey, namespace: ns, name });
const tcpRef = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });

describe('k8-manager: an encrypted tenant control plane, end to end', () => {
  const kube = management();
  const root = openBaoRoot();
  const id = unique('k8m');
  const labels = { 'kdc-e2e/k8m': id };
  let ns: string;
  let runner: KamajiRunner;
  let manager: K8ManagerProcess;
  const processes: { stop(): Promise<void> }[] = [];
  const cluster = 'prod';
  const names = clusterNames(cluster);

  beforeAll(async () => {
    ns = await createNamespace(kube, 'tenant');
    const controllers = await shardControllers(id, { OBSERVE_PERIOD: '3s' });
    manager = controllers[1];
    processes.push(...controllers);
    runner = await startKamajiRunner(platform(), { images: LOCAL_IMAGES, namespaces: [ns] });
    processes.push(runner);
  }, 120_000);
  afterAll(async () => {
    for (const p of processes.reverse()) await p.stop();
  });

  it('enabled: true -> Ready with the KMS plugin, and a tenant Secret is KMS ciphertext in etcd', async () => {
    const started = Date.now();
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    });
    const ready = await waitFor(
      'cluster Ready',
      async () => {
        const c = await kube.get<Cluster>(kdc(ns, cluster));
        return condition(c, 'Ready')?.status === 'True' ? c : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 1000 },
    );
    const seconds = (Date.now() - started) / 1000;
    expect(condition(ready, 'EncryptionAvailable')).toMatchObject({ status: 'True', reason: 'KMSPluginReady' });
    expect(condition(ready, 'EncryptionConfigError')?.status).toBe('False');
    expect(ready.status?.phase).toBe('Ready');
    expect(ready.status?.encryption).toMatchObject({
      resolvedKeyRef: names.autoEtcdKey,
      resolvedBackupKeyRef: names.autoEtcdKey,
      kmsPluginReady: true,
      kekRotation: { currentVersion: 1 },
    });
    console.log(JSON.stringify({ createToReadySeconds: seconds }));

    // The real Kamaji CRD kept every field of SPEC 3.5, including the native-sidecar restartPolicy.
    const tcp = await kube.get<TenantControlPlane & KubeObject>(tcpRef(ns, names.tenantControlPlane));
    const d = tcp.spec.controlPlane.deployment!;
    expect(d.additionalInitContainers!.map((c) => c.name)).toEqual([
      TCP_PATCH.socketInitContainer,
      TCP_PATCH.pluginContainer,
    ]);
    expect(d.additionalInitContainers![1]!.restartPolicy).toBe('Always');
    expect(d.serviceAccountName).toBe(names.kmsPluginServiceAccount);
    expect(d.extraArgs!.apiServer).toContain(
      '--encryption-provider-config=/etc/kubernetes/kdc-encryption/encryption-config.yaml',
    );
    expect(d.podAdditionalMetadata!.annotations![ANNOTATIONS.encryptionConfigHash]).toMatch(/^[0-9a-f]{32}$/);
    expect(d.additionalVolumes!.map((v) => v.name)).toEqual(
      expect.arrayContaining([
        TCP_PATCH.socketVolume,
        TCP_PATCH.encryptionConfigVolume,
        TCP_PATCH.tokenVolume,
        TCP_PATCH.caVolume,
      ]),
    );
    expect(await kube.getOrNull(kkey(ns, names.autoEtcdKey))).toMatchObject({
      metadata: { labels: { 'k8s.kube-dc.com/kdccluster': cluster, 'security.kube-dc.com/managed-by': 'kdccluster' } },
      spec: { purpose: 'etcd', deletionPolicy: 'retain' },
    });

    // A Secret written in the tenant is stored through our plugin.
    const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
      at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
    );
    const tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    await tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db-password' },
      stringData: { password: 'correct horse battery staple' },
    });
    const raw = await readRaw(
      platform().etcd.endpoint,
      `/${ns}_${names.tenantControlPlane}/secrets/default/db-password`,
    );
    expect(raw!.subarray(0, KMS_STORED_PREFIX.length).toString()).toBe(KMS_STORED_PREFIX);
    expect(raw!.includes(Buffer.from('correct horse'))).toBe(false);
    expect(
      (await tenant.get<KubeObject & { data: Record<string, string> }>(at(RESOURCES.secret, 'default', 'db-password')))
        .data.password,
    ).toBe(Buffer.from('correct horse battery staple').toString('base64'));
  }, 200_000);

  it('a KEK rotation shows up in kekRotation, then in currentKeyVersion once the plugin uses it', async () => {
    await root.transit().rotate(transitKeyName(ns, names.autoEtcdKey));
    await waitFor(
      'kekRotation.currentVersion 2',
      async () => (await kube.get<Cluster>(kdc(ns, cluster))).status?.encryption?.kekRotation?.currentVersion === 2,
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    await waitFor(
      'currentKeyVersion 2',
      async () => (await kube.get<Cluster>(kdc(ns, cluster))).status?.encryption?.currentKeyVersion === 2,
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
  }, 160_000);

  it("keeps another controller's entries in the TCP lists, and they keep ours", async () => {
    const ref = tcpRef(ns, names.tenantControlPlane);
    const tcp = await kube.get<TenantControlPlane & KubeObject>(ref);
    const d = tcp.spec.controlPlane.deployment!;
    // Another controller appends its own entries the same way: read, merge by name, write with the resourceVersion.
    d.additionalVolumes = [...d.additionalVolumes!, { name: 'vendor-audit', emptyDir: {} }];
    d.additionalVolumeMounts = {
      ...d.additionalVolumeMounts,
      apiServer: [
        ...d.additionalVolumeMounts!.apiServer!,
        { name: 'vendor-audit', mountPath: '/var/log/vendor-audit' },
      ],
    };
    d.extraArgs = { ...d.extraArgs, apiServer: [...d.extraArgs!.apiServer!, '--audit-log-maxage=7'] };
    d.podAdditionalMetadata = {
      ...d.podAdditionalMetadata,
      annotations: { ...d.podAdditionalMetadata!.annotations, 'vendor.example/owner': 'team-a' },
    };
    await kube.replace(ref, tcp);
    // Then our side changes: configmaps join, which changes the config Secret and its hash.
    await kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd: { resources: ['secrets', 'configmaps'] } } } });
    const hashBefore = d.podAdditionalMetadata.annotations![ANNOTATIONS.encryptionConfigHash];
    const after = await waitFor(
      'hash rolled',
      async () => {
        const t = await kube.get<TenantControlPlane & KubeObject>(ref);
        return t.spec.controlPlane.deployment!.podAdditionalMetadata!.annotations![ANNOTATIONS.encryptionConfigHash] !==
          hashBefore
          ? t
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    const a = after.spec.controlPlane.deployment!;
    expect(a.additionalVolumes!.map((v) => v.name)).toContain('vendor-audit');
    expect(a.additionalVolumeMounts!.apiServer!.map((m) => m.name)).toContain('vendor-audit');
    expect(a.extraArgs!.apiServer).toEqual(
      expect.arrayContaining([
        '--audit-log-maxage=7',
        '--encryption-provider-config=/etc/kubernetes/kdc-encryption/encryption-config.yaml',
      ]),
    );
    expect(a.podAdditionalMetadata!.annotations!['vendor.example/owner']).toBe('team-a');
    expect(a.additionalInitContainers!.find((c) => c.name === TCP_PATCH.pluginContainer)?.restartPolicy).toBe('Always');
    // The tenant rolls onto the new configuration and is Ready again.
    await runner.waitForPod(ns, names.tenantControlPlane, { ready: true, timeoutMs: 120_000, notHash: undefined });
    await waitFor(
      'Ready again',
      async () => condition(await kube.get<Cluster>(kdc(ns, cluster)), 'Ready')?.status === 'True',
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
  }, 200_000);

  it('a steady cluster makes zero writes over two resyncs', async () => {
    await waitFor(
      'Ready',
      async () => condition(await kube.get<Cluster>(kdc(ns, cluster)), 'Ready')?.status === 'True',
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    await sleep(4_000);
    const versions = async () =>
      Promise.all([
        kube.get(kdc(ns, cluster)),
        kube.get(kkey(ns, names.autoEtcdKey)),
        kube.get(at(RESOURCES.secret, ns, names.encryptionConfigSecret)),
        kube.get(at(RESOURCES.serviceAccount, ns, names.kmsPluginServiceAccount)),
      ]).then((objects) => objects.map((o) => `${o.kind}/${o.metadata?.resourceVersion}`));
    const writes = () => metricSum(manager.metricsUrl, 'kdc_k8manager_writes_total');
    const before = {
      versions: await versions(),
      writes: await writes(),
      spec: JSON.stringify(
        (await kube.get<TenantControlPlane & KubeObject>(tcpRef(ns, names.tenantControlPlane))).spec,
      ),
    };
    await sleep(2 * 5_000 + 2_000);
    expect(await versions()).toEqual(before.versions);
    expect(await writes()).toBe(before.writes);
    expect(
      JSON.stringify((await kube.get<TenantControlPlane & KubeObject>(tcpRef(ns, names.tenantControlPlane))).spec),
    ).toBe(before.spec);
  }, 60_000);
});
