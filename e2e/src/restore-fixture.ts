// One tenant whose etcd can be restored by k8-manager: a single-member etcd StatefulSet over
// mutual TLS in the tenant's namespace, the DataStore that names it, an encrypted KdcCluster on
// it with backups to the platform's bucket, the controllers and the local Kamaji runner. The
// restore tests and the restore attacks (4, 8, 9) start one each.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  ANNOTATIONS,
  BACKUP_CREDENTIAL_KEYS,
  KDC_API_VERSION,
  KubeClient,
  clusterNames,
  restoreRun,
  type KubeObject,
  type RestoreStatus,
  at,
  RESOURCES,
} from '@kdc/shared';
import { BACKUP_IMAGE, BACKUP_MAIN, LOCAL_IMAGES } from './images.ts';
import { JOB, createJobFromCronJob, type JobObject } from './controllers/jobs.ts';
import { startKamajiRunner, type KamajiRunner } from './kamaji-runner.ts';
import { STATEFULSET } from './controllers/statefulsets.ts';
import { createCA, issueCert } from './pki.ts';
import type { PlatformState } from './platform.ts';
import { waitFor } from './wait.ts';
import { nodeProgram } from './programs.ts';

export type FixtureCondition = { type: string; status: string; reason: string; message: string };
export type RestoreCluster = KubeObject & {
  status?: {
    latestBackupKey?: string;
    latestRestoreKey?: string;
    latestRestoreTime?: string;
    restore?: { key?: string; state?: string; since?: string; failure?: string };
    conditions?: FixtureCondition[];
  };
};

export const ETCD_IMAGE = 'kdc.local/etcd:3.6';
const b64 = (s: string) => Buffer.from(s).toString('base64');
export const TCP = (ns: string, name?: string) => ({ ...RESOURCES.tenantControlPlane, namespace: ns, name });
export const KDC = (ns: string, name?: string) => ({ ...RESOURCES.kdcCluster, namespace: ns, name });
export const DATASTORE_REF = (name?: string) => ({ ...RESOURCES.dataStore, name });
export const conditionOf = (c: RestoreCluster | undefined, type: string) =>
  c?.status?.conditions?.find((x) => x.type === type);

/** A single-member etcd StatefulSet over mutual TLS: the dedicated DataStore of one tenant. */
export function etcdStatefulSet(name: string) {
  const tls = '/etc/etcd/tls';
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'etcd',
              image: ETCD_IMAGE,
              args: [
                `--name=${name}-0`,
                '--data-dir=/var/lib/etcd/data',
                '--listen-client-urls=https://0.0.0.0:2379',
                '--advertise-client-urls=https://127.0.0.1:2379',
                '--listen-peer-urls=http://127.0.0.1:2380',
                '--initial-advertise-peer-urls=http://127.0.0.1:2380',
                `--initial-cluster=${name}-0=http://127.0.0.1:2380`,
                '--client-cert-auth',
                `--trusted-ca-file=${tls}/ca.crt`,
                `--cert-file=${tls}/server.crt`,
                `--key-file=${tls}/server.key`,
                '--listen-metrics-urls=http://0.0.0.0:2381',
                '--unsafe-no-fsync',
                '--log-level=warn',
              ],
              ports: [
                { name: 'client', containerPort: 2379 },
                { name: 'metrics', containerPort: 2381 },
              ],
              readinessProbe: { httpGet: { path: '/health', port: 2381 }, periodSeconds: 1, failureThreshold: 3 },
              volumeMounts: [
                { name: 'data', mountPath: '/var/lib/etcd' },
                { name: 'tls', mountPath: tls, readOnly: true },
              ],
            },
          ],
          volumes: [{ name: 'tls', secret: { secretName: `${name}-tls` } }],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        },
      ],
    },
  };
}

export interface RestoreFixture {
  kube: KubeClient;
  id: string;
  ns: string;
  cluster: string;
  names: ReturnType<typeof clusterNames>;
  /** The etcd StatefulSet and the DataStore that names it. */
  sts: string;
  dataStore: string;
  runner: KamajiRunner;
  get(): Promise<RestoreCluster>;
  /** An admin client of the tenant's own apiserver. */
  tenant(): Promise<KubeClient>;
  /** Sets restore-from (and `extra` annotations), dropping a finished run's display annotations. */
  requestRestore(key: string, extra?: Record<string, string | null>): Promise<void>;
  /** Until RestoreReady says the restore last requested ended; `seen` collects its states on the way. */
  waitEnd(seen?: string[], timeoutMs?: number): Promise<RestoreCluster>;
  /** Runs the backup CronJob once and returns the key k8-manager reports. */
  backupNow(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A tenant's dedicated DataStore as a platform runs it: a single-member etcd StatefulSet over
 * mutual TLS (server certificate with server usage only) in `ns`, run by `runner`, and the
 * DataStore object that names it, granted to every namespace. Returns the etcd client port.
 */
export async function dedicatedEtcdDataStore(input: {
  kube: KubeClient;
  runner: KamajiRunner;
  ns: string;
  dir: string;
  sts: string;
  dataStore: string;
}): Promise<number> {
  const { kube, runner, ns, dir, sts, dataStore } = input;
  const ca = createCA(dir, 'datastore');
  const server = issueCert(ca, dir, { name: 'etcd-server', commonName: 'etcd', ips: ['127.0.0.1'], usage: 'server' });
  const client = issueCert(ca, dir, { name: 'etcd-client', commonName: 'kamaji', usage: 'client' });
  await kube.create(at(RESOURCES.secret, ns), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${sts}-tls` },
    stringData: { 'ca.crt': ca.certPem, 'server.crt': server.certPem, 'server.key': server.keyPem },
  });
  await kube.create(STATEFULSET(ns), etcdStatefulSet(sts));
  const port = await waitFor(
    'etcd StatefulSet ready',
    async () => {
      const s = await kube.get<KubeObject & { status?: { readyReplicas?: number } }>(STATEFULSET(ns, sts));
      return s.status?.readyReplicas === 1 ? runner.statefulSetPort(ns, sts, 2379) : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await kube.create(DATASTORE_REF(), {
    apiVersion: 'kamaji.clastix.io/v1alpha1',
    kind: 'DataStore',
    metadata: {
      name: dataStore,
      annotations: { [ANNOTATIONS.etcdStatefulSet]: sts, [ANNOTATIONS.allowedNamespaces]: '*' },
    },
    spec: {
      driver: 'etcd',
      endpoints: [`127.0.0.1:${port}`],
      tlsConfig: {
        certificateAuthority: { certificate: { content: b64(ca.certPem) }, privateKey: { content: b64(ca.keyPem) } },
        clientCertificate: {
          certificate: { content: b64(client.certPem) },
          privateKey: { content: b64(client.keyPem) },
        },
      },
    },
  });
  return port;
}

/**
 * The state of the restore the cluster is in: k8-manager's record (status.restore), undefined
 * while a new request is not taken up; from a controller that kept no record, the annotation.
 */
export function restoreState(c: RestoreCluster): string | undefined {
  if (!c.status?.restore) return c.metadata?.annotations?.[ANNOTATIONS.restoreState];
  const run = restoreRun(c.metadata?.annotations, c.status as { restore?: RestoreStatus });
  return run && !run.fresh ? run.state : undefined;
}

/** `controllers` starts the encryption-reconciler and a k8-manager sharded to `kdc-e2e/k8m=<id>` (tests/helpers.ts shardControllers). */
export async function startRestoreFixture(
  p: PlatformState,
  input: {
    id: string;
    prefix: string;
    controllers: (id: string, k8ManagerEnv: Record<string, string>) => Promise<{ stop(): Promise<void> }[]>;
    k8ManagerEnv?: Record<string, string>;
  },
): Promise<RestoreFixture> {
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  const { id } = input;
  const cluster = id;
  const names = clusterNames(cluster);
  const sts = `${cluster}-etcd-members`;
  const dataStore = `ds-${id}`;
  const stops: { stop(): Promise<void> }[] = [];
  const dir = join(p.dir, id);
  mkdirSync(dir, { recursive: true });
  const ns = `${input.prefix}-${id}`;
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  await kube.create(at(RESOURCES.secret, ns), {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'managed-k8s-backups' },
    stringData: {
      [BACKUP_CREDENTIAL_KEYS.accessKeyId]: p.s3.accessKeyId,
      [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: p.s3.secretAccessKey,
    },
  });
  const runner = await startKamajiRunner(p, {
    // The backup image ships etcdutl, as the product image does.
    images: {
      ...LOCAL_IMAGES,
      [ETCD_IMAGE]: [p.binaries.etcd],
      [BACKUP_IMAGE]: ['/usr/bin/env', `ETCDUTL=${p.binaries.etcdutl}`, process.execPath, ...nodeProgram(BACKUP_MAIN)],
    },
    namespaces: [ns],
  });
  stops.push(runner);
  await dedicatedEtcdDataStore({ kube, runner, ns, dir, sts, dataStore });
  stops.push(...(await input.controllers(id, { OBSERVE_PERIOD: '3s', ...input.k8ManagerEnv })));
  await kube.create(KDC(ns), {
    apiVersion: KDC_API_VERSION,
    kind: 'KdcCluster',
    metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
    spec: {
      version: 'v1.35.0',
      controlPlane: { replicas: 1 },
      dataStore,
      encryption: { etcd: { enabled: true } },
      backup: { destinationPath: `s3://${p.s3.bucket}/` },
    },
  });
  const get = () => kube.get<RestoreCluster>(KDC(ns, cluster));
  let requested = '';
  await waitFor(
    'cluster Ready with backups scheduled',
    async () => {
      const c = await get();
      return conditionOf(c, 'Ready')?.status === 'True' && conditionOf(c, 'BackupReady')?.status === 'True';
    },
    { timeoutMs: 180_000, intervalMs: 1000 },
  );

  return {
    kube,
    id,
    ns,
    cluster,
    names,
    sts,
    dataStore,
    runner,
    get,
    tenant: async () => {
      const admin = await kube.get<KubeObject & { data: Record<string, string> }>(
        at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
      );
      return KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    },
    requestRestore: async (key, extra = {}) => {
      requested = key;
      await kube.patch(
        KDC(ns, cluster),
        {
          metadata: {
            annotations: {
              [ANNOTATIONS.restoreFrom]: key,
              [ANNOTATIONS.restoreState]: null,
              [ANNOTATIONS.restoreFailure]: null,
              ...extra,
            },
          },
        },
        'merge',
      );
    },
    waitEnd: (seen = [], timeoutMs = 240_000) =>
      waitFor(
        'restore to end',
        async () => {
          const c = await get();
          const state = restoreState(c);
          if (state && seen.at(-1) !== state) seen.push(state);
          const ready = conditionOf(c, 'RestoreReady');
          const ofThisRequest = ready?.message.startsWith(`Restore from "${requested}"`);
          return (state === 'Succeeded' || state === 'Failed') && ofThisRequest && ready!.reason !== 'RestoreInProgress'
            ? c
            : undefined;
        },
        { timeoutMs, intervalMs: 200 },
      ),
    backupNow: async () => {
      const before = (await get()).status?.latestBackupKey;
      const job = await createJobFromCronJob(kube, ns, names.backupCronJob);
      await waitFor(
        'backup Job complete',
        async () =>
          (await kube.get<JobObject>(JOB(ns, job.metadata.name))).status?.conditions?.some(
            (x) => x.type === 'Complete' && x.status === 'True',
          ),
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      return waitFor(
        'latestBackupKey',
        async () => {
          const key = (await get()).status?.latestBackupKey;
          return key && key !== before ? key : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    },
    stop: async () => {
      for (const s of stops.reverse()) await s.stop();
      await kube.delete(DATASTORE_REF(dataStore)).catch(() => undefined);
    },
  };
}
