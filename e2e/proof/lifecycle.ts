// npm run proof:lifecycle: the data lifecycle on a fresh local platform with the real controllers
// and the local Kamaji runner. 200 plaintext Secrets -> enable -> rotate -> keyRef switch ->
// disable, with a reader listing the Secrets through the tenant apiserver all along and a checksum
// ledger compared after every step. Two apiserver replicas, rolled one at a time like Kamaji does,
// so the reader always has one to ask. Every value of the last line is read from live objects and
// from the tenant's raw rows in its DataStore (etcdctl with the DataStore's client certificate).
import { join } from 'node:path';
import {
  KDC_API_VERSION,
  KubeClient,
  OpenBaoClient,
  clusterNames,
  type KdcClusterStatus,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { startEncryptionReconciler } from '../src/encryption-reconciler.ts';
import { LOCAL_IMAGES } from '../src/images.ts';
import { startK8Manager } from '../src/k8-manager.ts';
import { startKamajiRunner } from '../src/kamaji-runner.ts';
import { startPlatform } from '../src/platform.ts';
import { ETCD_IMAGE, dedicatedEtcdDataStore } from '../src/restore-fixture.ts';
import { startReader } from '../src/lifecycle-tenant.ts';
import { dataStoreAccess, rawRows, readLedger, tenantPrefix } from '../src/tenant-rows.ts';
import { waitFor } from '../src/wait.ts';

const N = Number(process.env.PROOF_SECRETS ?? 200);
type Condition = { type: string; status: string; reason: string; message: string };
type Cluster = KubeObject & { status?: KdcClusterStatus & { conditions?: Condition[]; phase?: string } };

const platform = await startPlatform();
const stops: (() => Promise<void>)[] = [];
let reader: ReturnType<typeof startReader> | undefined;
try {
  const p = platform.state;
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  const ns = 'acme-prod';
  const cluster = 'lifecycle';
  const names = clusterNames(cluster);
  const ref = { ...RESOURCES.kdcCluster, namespace: ns, name: cluster };
  const get = () => kube.get<Cluster>(ref);
  const condition = (c: Cluster, type: string) => c.status?.conditions?.find((x) => x.type === type);
  const patchEtcd = (etcd: object) => kube.patch(ref, { spec: { encryption: { etcd } } });
  for (const name of [ns, 'kube-dc-system'])
    await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const reconciler = await startEncryptionReconciler(p, {
    name: 'encryption-reconciler',
    leaseNamespace: 'kube-dc-system',
  });
  stops.push(() => reconciler.stop());
  const manager = await startK8Manager(p, {
    name: 'k8-manager',
    leaseNamespace: 'kube-dc-system',
    selector: '',
    env: { OBSERVE_PERIOD: '3s', MIGRATION_RATE: '1000' },
  });
  stops.push(() => manager.stop());
  const runner = await startKamajiRunner(p, { images: { ...LOCAL_IMAGES, [ETCD_IMAGE]: [p.binaries.etcd] } });
  stops.push(() => runner.stop());
  const dir = join(p.dir, 'lifecycle');
  const dataStore = 'acme-prod-etcd';
  const port = await dedicatedEtcdDataStore({ kube, runner, ns, dir, sts: 'acme-prod-etcd', dataStore });
  const { etcdctl } = await dataStoreAccess({ kube, etcdctl: p.binaries.etcdctl, dataStore, port, dir });

  const started = Date.now();
  await kube.create(
    { ...ref, name: undefined },
    {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 2 }, dataStore, backup: { enabled: false } },
    },
  );
  const admin = await waitFor(
    'the admin kubeconfig',
    async () =>
      (await kube.getOrNull<KubeObject & { data: Record<string, string> }>(
        at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
      )) ?? undefined,
    { timeoutMs: 180_000, intervalMs: 1000 },
  );
  const tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
  await waitFor(
    'the tenant default namespace',
    async () => (await tenant.getOrNull(at(RESOURCES.namespace, undefined, 'default')).catch(() => null)) !== null,
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, N - i) }, (_, j) =>
        tenant.create(at(RESOURCES.secret, 'default'), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `s-${i + j}` },
          stringData: { v: `lifecycle-${i + j}` },
        }),
      ),
    );
  }
  const ours = (name: string) => name.startsWith('s-');
  const ledger = await readLedger(tenant, 'secrets', ours);
  const prefix = await tenantPrefix(kube, ns, names.tenantControlPlane);
  let ledgerEqual = ledger.size === N;
  const checkLedger = async () => {
    const now = await waitFor(
      'the tenant apiserver answering',
      async () => readLedger(tenant, 'secrets', ours).catch(() => undefined),
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    ledgerEqual &&= now.size === ledger.size && [...ledger].every(([k, v]) => now.get(k) === v);
  };
  // The reader runs through the lifecycle, from a control plane that is up: both replicas ready
  // (as a Service, the runner's port has no ready endpoint to offer before that).
  await waitFor(
    'both control-plane replicas ready',
    async () => {
      const tcp = await kube.get<
        KubeObject & { status?: { kubernetesResources?: { deployment?: { readyReplicas?: number } } } }
      >({ ...RESOURCES.tenantControlPlane, namespace: ns, name: names.tenantControlPlane });
      return (tcp.status?.kubernetesResources?.deployment?.readyReplicas ?? 0) >= 2 || undefined;
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  reader = startReader(async () => {
    await tenant.list(at(RESOURCES.secret, 'default'), { limit: 500 });
  });

  /** Encrypted=True/EncryptionCompleted from a scan newer than `since`, with no migration running. */
  const completed = (since: number) =>
    waitFor(
      'EncryptionCompleted from a scan newer than the change',
      async () => {
        const c = await get();
        const e = c.status?.encryption;
        return condition(c, 'Encrypted')?.reason === 'EncryptionCompleted' &&
          e?.coverage &&
          Date.parse(e.coverage.scannedAt) >= Math.floor(since / 1000) * 1000 &&
          !e.migration
          ? c
          : undefined;
      },
      { timeoutMs: 420_000, intervalMs: 1000 },
    );
  /** The tenant's Secret rows as raw etcd holds them, judged against the key_ids the scan counted current. */
  const judge = async (c: Cluster) => {
    const raw = await rawRows(etcdctl, prefix, 'secrets');
    const currentIds = new Set(c.status!.encryption!.coverage!.keyIds ?? []);
    const current = [...raw.byKeyId].filter(([k]) => currentIds.has(k)).reduce((a, [, n]) => a + n, 0);
    return {
      plaintext: raw.plaintext,
      stale: raw.total - raw.plaintext - current,
      current,
      encryptedReason: condition(c, 'Encrypted')!.reason,
    };
  };

  let since = Date.now();
  await patchEtcd({ enabled: true });
  const afterEnable = await judge(await completed(since));
  await checkLedger();

  since = Date.now();
  const kmsKey = (await get()).status!.encryption!.resolvedKeyRef!;
  const keyId = (await kube.get({ ...RESOURCES.kmsKey, namespace: ns, name: kmsKey })).status!.keyId!;
  const root = new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    token: p.openbao.rootToken,
    timeoutMs: 10_000,
  });
  await root.transit().rotate(keyId.split('/').pop()!);
  const afterRotate = await judge(
    await waitFor(
      'the rewrap after the rotation',
      async () => {
        const c = await completed(since);
        return c.status!.encryption!.lastRewrapCompleted &&
          Date.parse(c.status!.encryption!.lastRewrapCompleted) >= Math.floor(since / 1000) * 1000
          ? c
          : undefined;
      },
      { timeoutMs: 420_000, intervalMs: 1000 },
    ),
  );
  await checkLedger();

  // keyRef switch to a second KMSKey: two plugins side by side until a scan proves every row moved.
  since = Date.now();
  const kkeys = { ...RESOURCES.kmsKey, namespace: ns };
  await kube.create(kkeys, {
    apiVersion: 'security.kube-dc.com/v1alpha1',
    kind: 'KMSKey',
    metadata: { name: 'lifecycle-next' },
    spec: { purpose: 'etcd' },
  });
  await waitFor(
    'KMSKey lifecycle-next Ready',
    async () => {
      const k = await kube.get<KubeObject & { status?: { conditions?: Condition[] } }>({
        ...kkeys,
        name: 'lifecycle-next',
      });
      return k.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') || undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  await patchEtcd({ keyRef: 'lifecycle-next' });
  const switched = await waitFor(
    'the key switch proven and finished',
    async () => {
      const c = await get();
      const keys = c.status?.encryption?.pluginKeys ?? [];
      return condition(c, 'KeySwitch')?.reason === 'KeySwitchCompleted' &&
        keys.length === 1 &&
        keys[0]!.keyRef === 'lifecycle-next'
        ? c
        : undefined;
    },
    { timeoutMs: 600_000, intervalMs: 1000 },
  );
  const afterSwitchRows = await judge(await completed(since));
  const tcpAfterSwitch = await kube.get<
    KubeObject & { spec: { controlPlane: { deployment?: { additionalInitContainers?: { name: string }[] } } } }
  >({ ...RESOURCES.tenantControlPlane, namespace: ns, name: names.tenantControlPlane });
  const afterSwitch = {
    ...afterSwitchRows,
    keyRef: switched.status!.encryption!.resolvedKeyRef,
    providers: [...(await rawRows(etcdctl, prefix, 'secrets')).providers.keys()],
    sidecars: (tcpAfterSwitch.spec.controlPlane.deployment?.additionalInitContainers ?? [])
      .map((c) => c.name)
      .filter((n) => n.startsWith('kms-plugin')),
  };
  await checkLedger();

  await patchEtcd({ disableRequested: true });
  await waitFor(
    'the disable migration to detach KMS',
    async () => ((await get()).status?.phase === 'Decrypted' ? true : undefined),
    { timeoutMs: 420_000, intervalMs: 1000 },
  );
  await patchEtcd({ enabled: false, disableRequested: false });
  const off = await waitFor(
    'EncryptionDisabled',
    async () => {
      const c = await get();
      return condition(c, 'Encrypted')?.reason === 'EncryptionDisabled' ? c : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  );
  await checkLedger();
  const rawOff = await rawRows(etcdctl, prefix, 'secrets');
  const reads = await reader.stop();

  const result = {
    secrets: N,
    afterEnable,
    afterRotate,
    afterSwitch,
    afterDisable: {
      kms: rawOff.total - rawOff.plaintext,
      plaintext: rawOff.plaintext,
      encryptedReason: condition(off, 'Encrypted')!.reason,
    },
    readErrors: reads.errors.length,
    readsAnswered: reads.answered,
    readsUnreachable: reads.unreachable,
    ...(reads.unanswered.length ? { readsNotAnswered: reads.unanswered } : {}),
    ledgerEqual,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  for (const stop of stops.reverse()) await stop();
  stops.length = 0;
  await platform.stop({ keepLogs: false });
  console.log(JSON.stringify(result));
  process.exit(
    result.readErrors === 0 &&
      ledgerEqual &&
      afterEnable.plaintext === 0 &&
      afterRotate.stale === 0 &&
      afterSwitch.stale === 0 &&
      afterSwitch.plaintext === 0 &&
      result.afterDisable.kms === 0
      ? 0
      : 1,
  );
} catch (error) {
  await reader?.stop();
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await platform.stop({ keepLogs: true });
  console.error(`proof failed: ${(error as Error).message}\nlogs: ${platform.state.logDir}`);
  process.exit(1);
}
