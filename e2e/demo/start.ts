// npm start: the product on this machine, as an operator would run it. Builds what is missing (the
// servers, our images), starts the local platform, installs the chart with helm (the controllers
// run from their images in the local runner), creates an encrypted KdcCluster with a few Secrets,
// and shows a live table and the proof in raw etcd. Ctrl-C tears everything down.
// `npm start -- --check`: the same, then teardown and one JSON line last, every value read from
// the live objects and raw etcd.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  KDC_API_VERSION,
  KubeClient,
  TCP_PATCH,
  clusterNames,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { listRaw } from '../src/etcd-raw.ts';
import { shippedImages } from '../src/images.ts';
import { DEPLOYMENT, type DeploymentObject } from '../src/controllers/deployments.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { startPlatform, type Platform } from '../src/platform.ts';
import { installProduct, PRODUCT_NAMESPACE } from '../src/product.ts';
import { waitFor } from '../src/wait.ts';

const { values: flags } = parseArgs({
  options: { check: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
});
if (flags.help) {
  process.stdout.write(
    'npm start [-- --check]\n  Runs the product locally until Ctrl-C. --check: tear down once it is proven and print one JSON line.\n',
  );
  process.exit(0);
}

const NS = 'acme';
const CLUSTER = 'demo';
const KMS_PREFIX = 'k8s:enc:kms:v2:';
const names = clusterNames(CLUSTER);
const started = Date.now();
const say = (line: string) =>
  process.stderr.write(`[start ${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

type Cluster = KubeObject & {
  status?: {
    conditions?: { type: string; status: string }[];
    encryption?: {
      resolvedKeyRef?: string;
      currentKeyVersion?: number;
      kmsPluginReady?: boolean;
      kekRotation?: { currentVersion?: number };
    };
  };
};
type Pod = KubeObject & {
  spec: { containers: { name: string; image: string; env?: { name: string; value?: string }[] }[] };
};

let platform: Platform | undefined;
let runner: KamajiRunner | undefined;
let stopping: Promise<void> | undefined;
const teardown = () =>
  (stopping ??= (async () => {
    say('tearing down');
    await runner?.stop().catch(() => undefined);
    await platform?.stop({ keepLogs: false }).catch(() => undefined);
  })());

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void teardown().then(() => process.exit(flags.check ? 1 : 0));
  });
}

try {
  say('images: building what the binary cache lacks (npm run images)');
  const shipped = await shippedImages((line) => say(`images: ${line}`));
  say('platform: etcd, kube-apiserver, OpenBao, S3 (built from the Go module proxy the first time)');
  platform = await startPlatform({ installCrds: { kdc: false, kamaji: true } });
  const { state } = platform;
  say(
    `platform up: etcd pid ${state.etcd.pid}, kube-apiserver pid ${state.management.pid}, OpenBao pid ${state.openbao.pid}, S3 pid ${state.s3.pid}`,
  );
  const kube = KubeClient.fromFile(state.management.kubeconfig);
  runner = await startKamajiRunner(state, { images: shipped.table, deployments: true, pods: true });
  say('helm install kdc charts/kdc-encryption (controllers from the images, pinned by digest)');
  await installProduct({
    state,
    shipped,
    dir: join(state.dir, 'demo'),
    set: { 'k8Manager.replicas': '1', 'encryptionReconciler.replicas': '1', 'k8Manager.observePeriod': '5s' },
  });

  say(`creating KdcCluster ${NS}/${CLUSTER} with spec.encryption.etcd.enabled: true`);
  const created = Date.now();
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  const ref = { ...RESOURCES.kdcCluster, namespace: NS, name: CLUSTER };
  await kube.create(
    { ...ref, name: undefined },
    {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: CLUSTER },
      spec: {
        version: 'v1.35.0',
        controlPlane: { replicas: 1 },
        backup: { enabled: false },
        encryption: { etcd: { enabled: true } },
      },
    },
  );
  const ready = (c: Cluster) => c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;
  await waitFor('the KdcCluster Ready', async () => ready(await kube.get<Cluster>(ref)) || undefined, {
    timeoutMs: 300_000,
    intervalMs: 1000,
  });
  say(`KdcCluster Ready in ${((Date.now() - created) / 1000).toFixed(1)} s`);

  const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
    at(RESOURCES.secret, NS, `${names.tenantControlPlane}-admin-kubeconfig`),
  );
  const tenantKubeconfig = join(state.dir, 'tenant-demo.kubeconfig');
  writeFileSync(tenantKubeconfig, Buffer.from(admin.data['admin.conf']!, 'base64'), { mode: 0o600 });
  const tenant = KubeClient.fromFile(tenantKubeconfig);
  for (const name of ['db-password', 'api-token', 'tls-key']) {
    await tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name },
      stringData: { value: `demo-${name}` },
    });
  }

  const rowsPrefix = `/${NS}_${names.tenantControlPlane}/secrets/`;
  const read = async () => {
    const cluster = await kube.get<Cluster>(ref);
    const rows = await listRaw(state.etcd.endpoint, rowsPrefix);
    const encrypted = rows.filter(
      (r) => r.value.subarray(0, KMS_PREFIX.length).toString('latin1') === KMS_PREFIX,
    ).length;
    const proof = rows.find((r) => r.key === `${rowsPrefix}default/db-password`)?.value;
    const prefix = proof ? proof.subarray(0, proof.indexOf(':', KMS_PREFIX.length) + 1).toString('latin1') : undefined;
    return {
      cluster,
      rows: rows.length,
      encrypted,
      prefix,
      plaintextSeen: proof?.includes(Buffer.from('demo-db-password')) ?? true,
    };
  };
  const table = (r: Awaited<ReturnType<typeof read>>) => {
    const e = r.cluster.status?.encryption;
    const cells = [
      `${NS}/${CLUSTER}`,
      e?.resolvedKeyRef ?? '-',
      String(e?.currentKeyVersion ?? e?.kekRotation?.currentVersion ?? '-'),
      String(e?.kmsPluginReady ?? false),
      `${r.encrypted}/${r.rows}`,
    ];
    const head = ['CLUSTER', 'KEY', 'KEK', 'PLUGIN-READY', 'ENCRYPTED/TOTAL SECRET ROWS'];
    const widths = head.map((h, i) => Math.max(h.length, cells[i]!.length) + 2);
    return [head, cells]
      .map((row) =>
        row
          .map((c, i) => c.padEnd(widths[i]!))
          .join('')
          .trimEnd(),
      )
      .join('\n');
  };
  const now = await read();
  if (now.plaintextSeen || !now.prefix) throw new Error('a tenant Secret is missing from etcd or stored in plaintext');

  if (flags.check) {
    // Every value from the live objects: the images the running pods and the TCP name, who owns the controllers, raw etcd.
    const images: Record<string, string> = {};
    let controllersFrom = 'helm';
    for (const name of ['k8-manager', 'encryption-reconciler']) {
      const deployment = await kube.get<DeploymentObject>(DEPLOYMENT(PRODUCT_NAMESPACE, name));
      if (deployment.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'Helm') controllersFrom = 'other';
      const [pod] = runner.deploymentPods(PRODUCT_NAMESPACE, name);
      const live = await kube.get<Pod>(at(RESOURCES.pod, PRODUCT_NAMESPACE, pod!.name));
      images[name] = live.spec.containers[0]!.image.split('@')[1]!;
      if (name === 'k8-manager')
        images['kdc-backup'] =
          live.spec.containers[0]!.env?.find((e) => e.name === 'KDC_BACKUP_IMAGE')?.value?.split('@')[1] ?? '';
    }
    const tcp = await kube.get<TenantControlPlane & KubeObject>({
      ...RESOURCES.tenantControlPlane,
      namespace: NS,
      name: names.tenantControlPlane,
    });
    images['kms-plugin'] =
      tcp.spec.controlPlane.deployment?.additionalInitContainers
        ?.find((c) => c.name === TCP_PATCH.pluginContainer)
        ?.image?.split('@')[1] ?? '';
    const result = {
      ready: ready(now.cluster),
      images,
      controllersFrom,
      etcdPrefix: now.prefix,
      encryptedRows: now.encrypted,
      totalRows: now.rows,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    process.stderr.write(`${table(now)}\n`);
    await teardown();
    console.log(JSON.stringify(result));
    process.exit(0);
  }

  const kubectl = state.binaries.kubectl;
  process.stdout.write(
    [
      '',
      table(now),
      '',
      `proof: the raw etcd row of Secret default/db-password starts with ${now.prefix} (no plaintext in it)`,
      '',
      `management kubeconfig: ${state.management.kubeconfig}`,
      `tenant kubeconfig:     ${tenantKubeconfig}`,
      '',
      `  ${kubectl} --kubeconfig ${state.management.kubeconfig} get kdcclusters,kmskeys -A`,
      `  ${kubectl} --kubeconfig ${state.management.kubeconfig} -n ${PRODUCT_NAMESPACE} get deployments,pods`,
      `  ${kubectl} --kubeconfig ${tenantKubeconfig} create secret generic mine --from-literal=k=v`,
      '',
      'Running until Ctrl-C; the table is printed again when it changes.',
      '',
    ].join('\n'),
  );
  let last = table(now);
  for (;;) {
    await new Promise((r) => setTimeout(r, 5000));
    if (stopping) break;
    const next = table(await read().catch(() => now));
    if (next !== last) process.stdout.write(`${new Date().toISOString()}\n${next}\n\n`);
    last = next;
  }
} catch (error) {
  process.stderr.write(
    `npm start failed: ${(error as Error).message}\n${platform ? `logs: ${platform.state.logDir}\n` : ''}`,
  );
  await runner?.stop().catch(() => undefined);
  await platform?.stop({ keepLogs: true }).catch(() => undefined);
  process.exit(1);
}
