import { join } from 'node:path';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackupStore,
  ENVELOPE_OBJECTS,
  listBackups,
  restoreBackup,
  runBackup,
  fileSnapshotSource,
} from '@kdc/backup-envelope';
import {
  ANNOTATIONS,
  BACKUP_CREDENTIAL_KEYS,
  KDC_API_VERSION,
  KMS_STORED_PREFIX,
  KubeClient,
  clusterNames,
  transitKeyName,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { buildTenantControlPlane } from '@kdc/k8-manager';
import { startEtcd, type EtcdServer } from '../src/etcd.ts';
import { LOCAL_IMAGES, shippedImages, type ShippedImages } from '../src/images.ts';
import { CRONJOB, JOB, createJobFromCronJob, type JobObject } from '../src/controllers/jobs.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { createCA, issueCert } from '../src/pki.ts';
import { waitFor } from '../src/wait.ts';
import {
  condition,
  createNamespace,
  DATASTORE,
  kdc,
  management,
  openBaoRoot,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

type Cluster = KubeObject & {
  status?: {
    latestBackupKey?: string;
    latestBackupTime?: string;
    backupBucket?: string;
    backupDestinationPath?: string;
    conditions?: { type: string; status: string; reason: string; message: string }[];
  };
};
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('k8-manager: the etcd backup CronJob of an encrypted cluster on its own DataStore', () => {
  const kube = management();
  const id = unique('bk');
  const labels = { 'kdc-e2e/k8m': id };
  // Cluster names are unique per organisation (their OpenBao policy and role are tcp-<cluster>),
  // and other test files run clusters named prod at the same time.
  const cluster = unique('bk');
  const names = clusterNames(cluster);
  const dataStore = `ds-${id}`;
  const processes: { stop(): Promise<void> }[] = [];
  let ns: string;
  let etcd: EtcdServer;
  let runner: KamajiRunner;
  let shipped: ShippedImages;
  let backupImage: string;
  let tenant: KubeClient;
  let store: BackupStore;

  const waitCluster = (what: string, test: (c: Cluster) => boolean, timeoutMs = 120_000) =>
    waitFor(
      what,
      async () => {
        const c = await kube.get<Cluster>(kdc(ns, cluster));
        return test(c) ? c : undefined;
      },
      { timeoutMs, intervalMs: 1000 },
    );
  const runJob = async () => {
    const job = await createJobFromCronJob(kube, ns, names.backupCronJob);
    return waitFor(
      `Job ${job.metadata.name} to finish`,
      async () => {
        const j = await kube.get<JobObject>(JOB(ns, job.metadata.name));
        return j.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
          ? j
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  };

  beforeAll(async () => {
    const p = platform();
    const dir = join(p.dir, id);
    mkdirSync(dir, { recursive: true });
    // A dedicated etcd DataStore over mutual TLS, as a platform gives a tenant.
    const ca = createCA(dir, 'datastore');
    const server = issueCert(ca, dir, { name: 'etcd-server', commonName: 'etcd', ips: ['127.0.0.1'], usage: 'server' });
    const probe = issueCert(ca, dir, { name: 'etcd-probe', commonName: 'probe', usage: 'client' });
    etcd = await startEtcd({
      binary: p.binaries.etcd,
      dir,
      logDir: p.logDir,
      name: `etcd-${id}`,
      tls: {
        certFile: server.certFile,
        keyFile: server.keyFile,
        caFile: ca.certFile,
        clientCertPem: probe.certPem,
        clientKeyPem: probe.keyPem,
        caPem: ca.certPem,
      },
    });
    processes.push(etcd);
    await kube.create(DATASTORE(), {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'DataStore',
      metadata: { name: dataStore, annotations: { [ANNOTATIONS.allowedNamespaces]: '*' } },
      spec: {
        driver: 'etcd',
        endpoints: [new URL(etcd.endpoint).host],
        tlsConfig: {
          certificateAuthority: { certificate: { content: b64(ca.certPem) }, privateKey: { content: b64(ca.keyPem) } },
          clientCertificate: {
            certificate: { content: b64(probe.certPem) },
            privateKey: { content: b64(probe.keyPem) },
          },
        },
      },
    });
    ns = await createNamespace(kube, 'tenant-bk');
    await kube.create(at(RESOURCES.secret, ns), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'managed-k8s-backups' },
      stringData: {
        [BACKUP_CREDENTIAL_KEYS.accessKeyId]: p.s3.accessKeyId,
        [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: p.s3.secretAccessKey,
      },
    });
    // The backup Jobs run the kdc-backup image we ship (the runner's table has no source mapping for it).
    shipped = await shippedImages();
    backupImage = shipped.built['kdc-backup']!.ref;
    processes.push(...(await shardControllers(id, { OBSERVE_PERIOD: '3s', KDC_BACKUP_IMAGE: backupImage })));
    runner = await startKamajiRunner(p, {
      images: { ...LOCAL_IMAGES, ...shipped.table },
      namespaces: [ns],
      extraOutboundPorts: [Number(new URL(etcd.endpoint).port)],
    });
    processes.push(runner);
    store = BackupStore.fromSettings({
      endpoint: p.s3.endpoint,
      region: p.s3.region,
      bucket: p.s3.bucket,
      accessKeyId: p.s3.accessKeyId,
      secretAccessKey: p.s3.secretAccessKey,
    });
  }, 600_000);
  afterAll(async () => {
    for (const p of processes.reverse()) await p.stop();
    await kube.delete(DATASTORE(dataStore)).catch(() => undefined);
    store?.destroy();
  });

  it('creates the CronJob once the cluster is encrypted, and BackupReady says it is scheduled', async () => {
    const p = platform();
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels },
      spec: {
        version: 'v1.35.0',
        controlPlane: { replicas: 1 },
        dataStore,
        encryption: { etcd: { enabled: true } },
        backup: { destinationPath: `s3://${p.s3.bucket}/`, retentionDays: 7, schedule: '17 3 * * *' },
      },
    });
    const c = await waitCluster(
      'cluster Ready with BackupReady',
      (x) => condition(x, 'Ready')?.status === 'True' && condition(x, 'BackupReady')?.reason === 'Scheduled',
      180_000,
    );
    expect(condition(c, 'BackupReady')).toMatchObject({
      status: 'True',
      message: expect.stringContaining(`into s3://${p.s3.bucket}/${cluster}/`),
    });
    expect(c.status).toMatchObject({
      backupBucket: p.s3.bucket,
      backupDestinationPath: `s3://${p.s3.bucket}/${cluster}/`,
    });

    const cj = await kube.get<KubeObject & { spec: Record<string, any> }>(CRONJOB(ns, names.backupCronJob));
    expect(cj.spec).toMatchObject({ schedule: '17 3 * * *', concurrencyPolicy: 'Forbid' });
    const pod = cj.spec.jobTemplate.spec.template.spec;
    expect(pod).toMatchObject({
      serviceAccountName: names.backupServiceAccount,
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
    });
    expect(pod.containers[0]).toMatchObject({ image: backupImage, args: ['backup', '--retention-days=7'] });
    expect(await kube.getOrNull(at(RESOURCES.serviceAccount, ns, names.backupServiceAccount))).not.toBeNull();
    // The tenant's apiserver really keeps its data on the dedicated DataStore.
    const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
      at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
    );
    tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    for (let i = 0; i < 20; i++)
      await tenant.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `s-${i}` },
        stringData: { v: `value-${i}` },
      });
  }, 240_000);

  it('a run uploads an envelope backup of the dedicated etcd, applies retention, and the status names it', async () => {
    const p = platform();
    // An old backup past retention, and the one before the run: retention keeps the newest only among the old.
    const old = await runBackup({
      store,
      transit: openBaoRoot().transit(),
      transitKey: transitKeyName(ns, names.autoEtcdKey),
      cluster,
      namespace: ns,
      source: fileSnapshotSource(writeDummySnapshot(join(p.dir, id, 'old.db'))),
      now: new Date(Date.now() - 30 * 86_400_000),
    });
    const job = await runJob();
    expect(job.status?.conditions?.find((c) => c.type === 'Complete')?.status, runner.dir).toBe('True');

    const c = await waitCluster('latestBackupKey', (x) => condition(x, 'BackupReady')?.reason === 'BackupSucceeded');
    const { backups } = await listBackups(store, cluster);
    expect(backups.map((b) => b.key)).not.toContain(old.key);
    expect(backups).toHaveLength(1);
    const newest = backups[0]!;
    expect(c.status?.latestBackupKey).toBe(newest.key);
    expect(Date.parse(c.status!.latestBackupTime!)).toBe(Math.floor(newest.createdAt.getTime() / 1000) * 1000);
    expect(newest.metadata).toMatchObject({ transitKey: transitKeyName(ns, names.autoEtcdKey), transitKeyVersion: 1 });
    for (const object of Object.values(ENVELOPE_OBJECTS)) expect(await store.head(newest.key + object)).not.toBeNull();

    // It restores, and holds this tenant's rows, still KMS ciphertext, and nobody else's.
    const out = join(p.dir, id, 'restored', 'snapshot.db');
    const restored = await restoreBackup({
      store,
      transit: openBaoRoot().transit(),
      cluster,
      key: newest.key,
      destination: { kind: 'file', path: out },
    });
    expect(restored.sha256).toBe(newest.metadata!.etcdSnapshotSha256);
    const bytes = readFileSync(out);
    const prefix = `/${ns}_${names.tenantControlPlane}/secrets/default/`;
    for (let i = 0; i < 20; i++) expect(bytes.includes(`${prefix}s-${i}`)).toBe(true);
    expect(bytes.includes(KMS_STORED_PREFIX)).toBe(true);
    expect(bytes.includes('value-7')).toBe(false);
    expect(bytes.includes('/registry/')).toBe(false);
  }, 240_000);

  it('a failed run turns BackupReady False with the Job to look at, and keeps the last good backup', async () => {
    const before = await kube.get<Cluster>(kdc(ns, cluster));
    await kube.patch(
      at(RESOURCES.secret, ns, 'managed-k8s-backups'),
      { stringData: { [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: 'wrong-secret-key' } },
      'merge',
    );
    const job = await runJob();
    expect(job.status?.conditions?.find((c) => c.type === 'Failed')?.status).toBe('True');
    const c = await waitCluster('BackupFailed', (x) => condition(x, 'BackupReady')?.reason === 'BackupFailed');
    expect(condition(c, 'BackupReady')).toMatchObject({
      status: 'False',
      message: expect.stringContaining(`kubectl logs -n ${ns} job/${job.metadata.name}`),
    });
    expect(c.status?.latestBackupKey).toBe(before.status?.latestBackupKey);
    expect((await listBackups(store, cluster)).backups).toHaveLength(1);
  }, 240_000);

  it('a second control plane on the same DataStore, of another shard, stops backups: a snapshot would carry both tenants', async () => {
    // As another shard's k8-manager makes it (its shard's label): this k8-manager's TCP cache, selected
    // by its own shard label, never holds it; only the placement of every TCP says who shares the DataStore.
    const neighbour = buildTenantControlPlane(
      ns,
      'neighbour',
      { version: 'v1.35.0', controlPlane: { replicas: 1 }, dataStore },
      { 'kdc-e2e/k8m': `${id}-other` },
    );
    await kube.create(at(RESOURCES.tenantControlPlane, ns), neighbour);
    const c = await waitCluster(
      'SharedDataStore',
      (x) => condition(x, 'BackupReady')?.reason === 'SharedDataStore',
      120_000,
    );
    expect(condition(c, 'BackupReady')).toMatchObject({
      status: 'False',
      message: expect.stringContaining(`${ns}/neighbour-cp`),
    });
  }, 180_000);
});

/** A small file standing in for an old snapshot (retention only looks at names and metadata). */
function writeDummySnapshot(path: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, Buffer.alloc(64 * 1024, 7));
  return path;
}
