// npm run proof:encryption: the whole path on a fresh local platform. One encrypted KdcCluster
// goes through the real controllers and the local Kamaji runner; a tenant Secret is written and
// read back raw from etcd. The tenant's KMS plugin runs from the kms-plugin image we ship (built
// or reused by `npm run images`' code). Every value of the last line is read from the live objects.
import {
  KDC_API_VERSION,
  KMS_PROVIDER_NAME,
  KubeClient,
  TCP_PATCH,
  clusterNames,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { readRaw } from '../src/etcd-raw.ts';
import { LOCAL_IMAGES, shippedImages } from '../src/images.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { startKamajiRunner } from '../src/kamaji-runner.ts';
import { startPlatform } from '../src/platform.ts';
import { waitFor } from '../src/wait.ts';

type Cluster = KubeObject & {
  status?: {
    encryption?: { resolvedKeyRef?: string; kekRotation?: { currentVersion?: number } };
    conditions?: { type: string; status: string }[];
  };
};

const shipped = await shippedImages((line) => process.stderr.write(`[images] ${line}\n`));
const plugin = shipped.built['kms-plugin']!;
const platform = await startPlatform();
const stops: (() => Promise<void>)[] = [];
try {
  const kube = KubeClient.fromFile(platform.state.management.kubeconfig);
  const ns = 'acme-prod';
  const cluster = 'proof';
  const names = clusterNames(cluster);
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-dc-system' } });
  const reconciler = await startEncryptionReconciler(platform.state, {
    name: 'encryption-reconciler',
    leaseNamespace: 'kube-dc-system',
  });
  stops.push(() => reconciler.stop());
  const manager = await startK8Manager(platform.state, {
    name: 'k8-manager',
    leaseNamespace: 'kube-dc-system',
    selector: '',
    env: { OBSERVE_PERIOD: '3s', KMS_PLUGIN_IMAGE: plugin.ref },
  });
  stops.push(() => manager.stop());
  const runner = await startKamajiRunner(platform.state, { images: { ...LOCAL_IMAGES, ...shipped.table } });
  stops.push(() => runner.stop());

  const started = Date.now();
  await kube.create(
    { ...RESOURCES.kdcCluster, namespace: ns },
    {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
    },
  );
  const ref = { ...RESOURCES.kdcCluster, namespace: ns, name: cluster };
  const ready = await waitFor(
    'KdcCluster Ready',
    async () => {
      const c = await kube.get<Cluster>(ref);
      return c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? c : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 500 },
  );
  const seconds = (Date.now() - started) / 1000;

  const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
    at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
  );
  const tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
  await tenant.create(at(RESOURCES.secret, 'default'), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'proof' },
    stringData: { token: 'proof-of-encryption' },
  });
  const raw = await readRaw(platform.state.etcd.endpoint, `/${ns}_${names.tenantControlPlane}/secrets/default/proof`);
  const prefix = raw
    ?.subarray(0, raw.indexOf(':', `k8s:enc:kms:v2:${KMS_PROVIDER_NAME}`.length) + 1)
    .toString('latin1');
  if (!raw || raw.includes(Buffer.from('proof-of-encryption')))
    throw new Error('the tenant Secret is missing from etcd or stored in plaintext');
  const tcp = await kube.get<TenantControlPlane & KubeObject>({
    ...RESOURCES.tenantControlPlane,
    namespace: ns,
    name: names.tenantControlPlane,
  });
  const sidecar = tcp.spec.controlPlane.deployment?.additionalInitContainers?.find(
    (c) => c.name === TCP_PATCH.pluginContainer,
  );
  const result = {
    ready: ready.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false,
    encryptionAvailable:
      ready.status?.conditions?.some((x) => x.type === 'EncryptionAvailable' && x.status === 'True') ?? false,
    resolvedKeyRef: ready.status?.encryption?.resolvedKeyRef,
    kekVersion: ready.status?.encryption?.kekRotation?.currentVersion,
    etcdPrefix: prefix,
    sidecarRestartPolicy: sidecar?.restartPolicy,
    sidecarImage: sidecar?.image,
    sidecarImageDigest: sidecar?.image === plugin.ref ? plugin.digest : undefined,
    seconds,
  };
  for (const stop of stops.reverse()) await stop();
  stops.length = 0;
  await platform.stop({ keepLogs: false });
  console.log(JSON.stringify(result));
  // Keep-alive sockets to servers that are gone would hold the event loop open for minutes.
  process.exit(0);
} catch (error) {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await platform.stop({ keepLogs: true });
  console.error(`proof failed: ${(error as Error).message}\nlogs: ${platform.state.logDir}`);
  process.exit(1);
}
