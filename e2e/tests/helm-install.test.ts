import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KDC_API_VERSION, KubeClient, clusterNames, type KubeObject, at, RESOURCES } from '@kdc/shared';
import { CHART_DIR } from '../src/chart.ts';
import { readRaw } from '../src/etcd-raw.ts';
import { shippedImages, type ShippedImages } from '../src/images.ts';
import { isolatedManagement, type IsolatedManagement } from '../src/isolated.ts';
import { DEPLOYMENT, type DeploymentObject } from '../src/controllers/deployments.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { installProduct, PRODUCT_NAMESPACE as SYSTEM, type ProductRelease } from '../src/product.ts';
import { waitFor } from '../src/wait.ts';
import { platform, unique } from './helpers.ts';

type Status = { conditions?: { type: string; status: string; reason?: string }[] };
type Deployment = DeploymentObject & {
  status?: Status & { availableReplicas?: number; updatedReplicas?: number; observedGeneration?: number };
};
type Crd = KubeObject & { spec: { versions: { additionalPrinterColumns?: { name: string }[] }[] } };
type Pod = KubeObject & {
  spec: { containers: { image: string }[]; serviceAccountName: string };
  status?: { podIP?: string; containerStatuses?: { ready: boolean }[] };
};

const CRD = (name?: string) => ({ ...RESOURCES.customResourceDefinition, name });
const LEASE = (name: string) => ({ ...RESOURCES.lease, namespace: SYSTEM, name });
const KDCCLUSTER = (namespace: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace, name });
const isTrue = (s: Status | undefined, type: string) =>
  s?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;

// The product as an operator installs it: `helm install` of our chart into a management apiserver
// of its own (so the release owns the CRDs), the local runner running the Deployments from the
// images we ship (built by `npm run images`' code, pinned by digest), and an encrypted KdcCluster
// that only those controllers serve. Then `helm upgrade` with a CRD change, and `helm uninstall`.
describe('helm install runs the product from the shipped images', () => {
  const id = unique('helm');
  const tenantNs = `${id}-tenant`;
  const cluster = 'demo';
  let iso: IsolatedManagement;
  let kube: KubeClient;
  let runner: KamajiRunner;
  let shipped: ShippedImages;
  let release: ProductRelease;
  let dir: string;

  beforeAll(async () => {
    const p = platform();
    dir = join(p.dir, id);
    shipped = await shippedImages();
    iso = await isolatedManagement(p, id, { openbao: true, crds: { kdc: false, kamaji: true } });
    kube = iso.kube;
    runner = await startKamajiRunner(iso.state, {
      images: shipped.table,
      deployments: true,
      pods: true,
      dir: join(dir, 'runner'),
      logDir: join(p.logDir, id),
    });
  }, 600_000);

  afterAll(async () => {
    await runner?.stop();
    await iso?.stop();
  });

  it("install: the CRDs and both controllers come up from their images as the chart's ServiceAccounts; an encrypted KdcCluster reaches Ready and its Secrets land in etcd as k8s:enc:kms:v2", async () => {
    // helm --wait reads the Deployments' status as the runner writes it (kstatus: Available, NewReplicaSetAvailable).
    release = await installProduct({
      state: iso.state,
      shipped,
      dir,
      set: { 'k8Manager.replicas': '1', 'encryptionReconciler.replicas': '1', 'k8Manager.observePeriod': '3s' },
    });
    for (const name of ['kdcclusters.k8s.kube-dc.com', 'kmskeys.security.kube-dc.com']) {
      const crd = await kube.get<Crd>(CRD(name));
      expect(crd.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    }
    for (const name of ['k8-manager', 'encryption-reconciler']) {
      const deployment = await kube.get<Deployment>(DEPLOYMENT(SYSTEM, name));
      expect(deployment.status).toMatchObject({
        availableReplicas: 1,
        updatedReplicas: 1,
        observedGeneration: deployment.metadata.generation,
      });
      const [pod] = runner.deploymentPods(SYSTEM, name);
      const live = await kube.get<Pod>(at(RESOURCES.pod, SYSTEM, pod!.name));
      expect(live.spec.containers[0]!.image).toBe(`${shipped.built[name]!.ref}@${shipped.built[name]!.digest}`);
      expect(live.spec.serviceAccountName).toBe(name);
      // The process runs as the image's user, not root.
      const pid = pod!.container(name)!.pid!;
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65532\s/m);
      // It leads: in-cluster credentials (the projected ServiceAccount token) work.
      await waitFor(
        `${name} holding its Lease`,
        async () =>
          (await kube.getOrNull<KubeObject & { spec: { holderIdentity?: string } }>(LEASE(name)))?.spec
            .holderIdentity === pod!.name || undefined,
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    }

    // helm test: its pod (the k8-manager image) finds both controllers holding and renewing their Leases.
    // (--logs would ask the node's kubelet, which is the runner here: its container log is read from the runner's log dir instead.)
    expect(await release.helm('test', 'kdc', '-n', SYSTEM, '--timeout', '2m')).toMatch(
      /TEST SUITE:\s+controllers-test[\s\S]*Phase:\s+Succeeded/,
    );
    const log = readFileSync(join(platform().logDir, id, `${SYSTEM}_controllers-test_check-leases.log`), 'utf8');
    expect(log).toContain('ok  k8-manager: held by k8-manager-');
    expect(log).toContain('ok  encryption-reconciler: held by encryption-reconciler-');

    await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: tenantNs } });
    await kube.create(KDCCLUSTER(tenantNs), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster },
      spec: {
        version: 'v1.35.0',
        controlPlane: { replicas: 1 },
        backup: { enabled: false },
        encryption: { etcd: { enabled: true } },
      },
    });
    await waitFor(
      'the KdcCluster Ready with encryption available',
      async () => {
        const c = await kube.get<KubeObject & { status?: Status }>(KDCCLUSTER(tenantNs, cluster));
        return (isTrue(c.status, 'Ready') && isTrue(c.status, 'EncryptionAvailable')) || undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
    const names = clusterNames(cluster);
    const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
      at(RESOURCES.secret, tenantNs, `${names.tenantControlPlane}-admin-kubeconfig`),
    );
    const tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    await tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'from-helm' },
      stringData: { v: 'installed-by-helm' },
    });
    const raw = await readRaw(
      iso.state.etcd.endpoint,
      `/${tenantNs}_${names.tenantControlPlane}/secrets/default/from-helm`,
    );
    expect(raw?.subarray(0, 15).toString('latin1')).toBe('k8s:enc:kms:v2:');
    expect(raw!.includes(Buffer.from('installed-by-helm'))).toBe(false);
  }, 600_000);

  it('upgrade: a CRD change reaches the apiserver and a changed setting rolls the controller; the cluster stays Ready', async () => {
    // The next chart version: one more printer column on KdcCluster, and k8-manager observing more often.
    const chart = join(dir, 'chart-next');
    cpSync(CHART_DIR, chart, { recursive: true });
    const crdFile = join(chart, 'files/crds/kdcclusters.k8s.kube-dc.com.yaml');
    const crd = parse(readFileSync(crdFile, 'utf8')) as Crd;
    crd.spec.versions[0]!.additionalPrinterColumns!.push({
      name: 'Upgraded',
      type: 'string',
      jsonPath: '.metadata.uid',
      priority: 1,
    } as { name: string });
    writeFileSync(crdFile, stringify(crd));
    const chartYaml = parse(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    writeFileSync(join(chart, 'Chart.yaml'), stringify({ ...chartYaml, version: '0.1.1' }));
    const before = await kube.get<Deployment>(DEPLOYMENT(SYSTEM, 'k8-manager'));
    const [oldPod] = runner.deploymentPods(SYSTEM, 'k8-manager');

    await release.helm(
      'upgrade',
      'kdc',
      chart,
      '-n',
      SYSTEM,
      '--wait',
      '--timeout',
      '5m',
      ...release.values,
      '--set',
      'k8Manager.observePeriod=4s',
    );
    const live = await kube.get<Crd>(CRD('kdcclusters.k8s.kube-dc.com'));
    expect(live.spec.versions[0]!.additionalPrinterColumns!.map((c) => c.name)).toContain('Upgraded');
    const after = await kube.get<Deployment>(DEPLOYMENT(SYSTEM, 'k8-manager'));
    expect(after.metadata.generation).toBeGreaterThan(before.metadata.generation!);
    const pods = runner.deploymentPods(SYSTEM, 'k8-manager');
    expect(pods.map((p) => p.name)).not.toContain(oldPod!.name);
    expect(pods).toHaveLength(1);
    await waitFor(
      'the new k8-manager pod holding the Lease',
      async () =>
        (await kube.get<KubeObject & { spec: { holderIdentity?: string } }>(LEASE('k8-manager'))).spec
          .holderIdentity === pods[0]!.name || undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const c = await kube.get<KubeObject & { status?: Status }>(KDCCLUSTER(tenantNs, cluster));
    expect(isTrue(c.status, 'Ready')).toBe(true);
  }, 600_000);

  it('uninstall: the controllers stop; the CRDs (resource-policy keep) and the KdcCluster stay', async () => {
    await release.helm('uninstall', 'kdc', '-n', SYSTEM, '--wait', '--timeout', '2m');
    expect(await kube.getOrNull(DEPLOYMENT(SYSTEM, 'k8-manager'))).toBeNull();
    await waitFor(
      'no controller pod running',
      async () =>
        runner.deploymentPods(SYSTEM, 'k8-manager').length +
          runner.deploymentPods(SYSTEM, 'encryption-reconciler').length ===
          0 || undefined,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(await kube.getOrNull(CRD('kdcclusters.k8s.kube-dc.com'))).not.toBeNull();
    expect(await kube.getOrNull(CRD('kmskeys.security.kube-dc.com'))).not.toBeNull();
    expect(await kube.getOrNull(KDCCLUSTER(tenantNs, cluster))).not.toBeNull();
    // Positive control for "gone": helm's own objects of the release are.
    expect(await kube.getOrNull(at(RESOURCES.serviceAccount, SYSTEM, 'k8-manager'))).toBeNull();
  }, 300_000);
});
