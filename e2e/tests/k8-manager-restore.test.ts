import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANNOTATIONS, BACKUP_CREDENTIAL_KEYS, CORE, KDC_API_VERSION, KubeClient, clusterNames,
  type KubeObject,
} from '@kdc/shared';
import { BACKUP_IMAGE, BACKUP_MAIN, LOCAL_IMAGES } from '../src/images.ts';
import { CRONJOB, JOB, createJobFromCronJob, type JobObject } from '../src/kamaji-jobs.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { STATEFULSET } from '../src/kamaji-statefulsets.ts';
import { kdcEnv, runKdc } from '../src/cli-harness.ts';
import { createCA, issueCert } from '../src/pki.ts';
import { waitFor } from '../src/wait.ts';
import { condition, createNamespace, DATASTORE, kdc, management, platform, shardControllers, unique } from './helpers.ts';

type Cluster = KubeObject & { status?: { latestBackupKey?: string; latestRestoreKey?: string; latestRestoreTime?: string; conditions?: { type: string; status: string; reason: string; message: string }[] } };
const tcpRef = (ns: string, name: string) => ({ group: 'kamaji.clastix.io', version: 'v1alpha1', plural: 'tenantcontrolplanes', namespace: ns, name });
const b64 = (s: string) => Buffer.from(s).toString('base64');
const ETCD_IMAGE = 'kdc.local/etcd:3.6';

/** A single-member etcd StatefulSet over mutual TLS: the dedicated DataStore of one tenant. */
function etcdStatefulSet(name: string) {
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
          containers: [{
            name: 'etcd',
            image: ETCD_IMAGE,
            args: [
              `--name=${name}-0`, '--data-dir=/var/lib/etcd/data',
              '--listen-client-urls=https://0.0.0.0:2379', '--advertise-client-urls=https://127.0.0.1:2379',
              '--listen-peer-urls=http://127.0.0.1:2380', '--initial-advertise-peer-urls=http://127.0.0.1:2380', `--initial-cluster=${name}-0=http://127.0.0.1:2380`,
              '--client-cert-auth', `--trusted-ca-file=${tls}/ca.crt`, `--cert-file=${tls}/server.crt`, `--key-file=${tls}/server.key`,
              '--listen-metrics-urls=http://0.0.0.0:2381', '--unsafe-no-fsync', '--log-level=warn',
            ],
            ports: [{ name: 'client', containerPort: 2379 }, { name: 'metrics', containerPort: 2381 }],
            readinessProbe: { httpGet: { path: '/health', port: 2381 }, periodSeconds: 1, failureThreshold: 3 },
            volumeMounts: [{ name: 'data', mountPath: '/var/lib/etcd' }, { name: 'tls', mountPath: tls, readOnly: true }],
          }],
          volumes: [{ name: 'tls', secret: { secretName: `${name}-tls` } }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  };
}

describe('k8-manager: kube-dc.com/restore-from stops the tenant, restores its etcd from an envelope backup, and starts it', () => {
  const kube = management();
  const id = unique('rs');
  const labels = { 'kdc-e2e/k8m': id };
  // Unique per organisation (OpenBao policy and role tcp-<cluster>); other files run a cluster prod.
  const cluster = unique('rs');
  const names = clusterNames(cluster);
  const sts = `${cluster}-etcd-members`;
  const dataStore = `ds-${id}`;
  const processes: { stop(): Promise<void> }[] = [];
  let ns: string;
  let runner: KamajiRunner;

  const get = () => kube.get<Cluster>(kdc(ns, cluster));
  const tenant = async () => {
    const admin = await kube.get<KubeObject & { data: Record<string, string> }>(CORE('secrets', ns, `${names.tenantControlPlane}-admin-kubeconfig`));
    return KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
  };
  const secretValue = async (t: KubeClient, name: string) => {
    const s = await t.getOrNull<KubeObject & { data?: Record<string, string> }>(CORE('secrets', 'default', name));
    return s ? Buffer.from(s.data!.v!, 'base64').toString() : null;
  };
  const requestRestore = (key: string) => kube.patch(kdc(ns, cluster), { metadata: { annotations: { [ANNOTATIONS.restoreFrom]: key, [ANNOTATIONS.restoreState]: null, [ANNOTATIONS.restoreFailure]: null } } }, 'merge');
  /** Polls the state annotation until the restore ended and RestoreReady says so; `seen` collects the states observed. */
  const waitEnd = (seen: string[], timeoutMs = 240_000) => waitFor('restore to end', async () => {
    const c = await get();
    const state = c.metadata?.annotations?.[ANNOTATIONS.restoreState];
    if (state && seen.at(-1) !== state) seen.push(state);
    const ready = condition(c, 'RestoreReady');
    return (state === 'Succeeded' || state === 'Failed') && ready && ready.reason !== 'RestoreInProgress' ? c : undefined;
  }, { timeoutMs, intervalMs: 200 });
  /** The states the controller announced in events (a fast pass can skip a poll), sorted: event times have 1 s resolution. */
  const stateEvents = async (key: string) => {
    const events = await kube.list<KubeObject & { reason: string; message: string; firstTimestamp?: string }>(CORE('events', ns), { fieldSelector: `involvedObject.name=${cluster}` });
    return events.items
      .filter((e) => e.reason.startsWith('Restore') && e.message.startsWith(`restore from "${key}": `))
      .map((e) => e.message.slice(`restore from "${key}": `.length).split(' ')[0]!)
      .sort();
  };
  const cronJobEvents = async () => (await kube.list<KubeObject & { reason: string }>(CORE('events', ns), { fieldSelector: `involvedObject.name=${cluster}` })).items.map((e) => e.reason).filter((r) => r.startsWith('BackupCronJob'));
  const ORDER = ['Validating', 'DrainingControlPlane', 'StoppingEtcd', 'RestoringSnapshot', 'StartingEtcd', 'StartingControlPlane', 'Succeeded'];

  beforeAll(async () => {
    const p = platform();
    const dir = join(p.dir, id);
    mkdirSync(dir, { recursive: true });
    ns = await createNamespace(kube, 'tenant-rs');
    const ca = createCA(dir, 'datastore');
    const server = issueCert(ca, dir, { name: 'etcd-server', commonName: 'etcd', ips: ['127.0.0.1'], usage: 'server' });
    const client = issueCert(ca, dir, { name: 'etcd-client', commonName: 'kamaji', usage: 'client' });
    await kube.create(CORE('secrets', ns), { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${sts}-tls` }, stringData: { 'ca.crt': ca.certPem, 'server.crt': server.certPem, 'server.key': server.keyPem } } as KubeObject);
    await kube.create(CORE('secrets', ns), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'managed-k8s-backups' }, stringData: { [BACKUP_CREDENTIAL_KEYS.accessKeyId]: p.s3.accessKeyId, [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: p.s3.secretAccessKey } } as KubeObject);
    runner = await startKamajiRunner(p, {
      // The backup image ships etcdutl, as the product image does.
      images: { ...LOCAL_IMAGES, [ETCD_IMAGE]: [p.binaries.etcd], [BACKUP_IMAGE]: ['/usr/bin/env', `ETCDUTL=${p.binaries.etcdutl}`, process.execPath, '--conditions=source', BACKUP_MAIN] },
      namespaces: [ns],
    });
    processes.push(runner);
    await kube.create(STATEFULSET(ns), etcdStatefulSet(sts) as unknown as KubeObject);
    const port = await waitFor('etcd StatefulSet ready', async () => {
      const s = await kube.get<KubeObject & { status?: { readyReplicas?: number } }>(STATEFULSET(ns, sts));
      return s.status?.readyReplicas === 1 ? runner.statefulSetPort(ns, sts, 2379) : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250 });
    await kube.create(DATASTORE(), {
      apiVersion: 'kamaji.clastix.io/v1alpha1', kind: 'DataStore', metadata: { name: dataStore, annotations: { [ANNOTATIONS.etcdStatefulSet]: sts, [ANNOTATIONS.allowedNamespaces]: '*' } },
      spec: {
        driver: 'etcd',
        endpoints: [`127.0.0.1:${port}`],
        tlsConfig: {
          certificateAuthority: { certificate: { content: b64(ca.certPem) }, privateKey: { content: b64(ca.keyPem) } },
          clientCertificate: { certificate: { content: b64(client.certPem) }, privateKey: { content: b64(client.keyPem) } },
        },
      },
    });
    processes.push(...await shardControllers(id, { OBSERVE_PERIOD: '3s' }));
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name: cluster, labels },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, dataStore, encryption: { etcd: { enabled: true } }, backup: { destinationPath: `s3://${p.s3.bucket}/` } },
    });
    await waitFor('cluster Ready with backups scheduled', async () => {
      const c = await get();
      return condition(c, 'Ready')?.status === 'True' && condition(c, 'BackupReady')?.status === 'True';
    }, { timeoutMs: 180_000, intervalMs: 1000 });
  }, 300_000);
  afterAll(async () => {
    for (const p of processes.reverse()) await p.stop();
    await kube.delete(DATASTORE(dataStore)).catch(() => undefined);
  });

  it('refuses a backup of another cluster at Validating and touches nothing', async () => {
    await requestRestore('other/other-20260101T000000Z/');
    const c = await waitEnd([], 60_000);
    expect(c.metadata?.annotations?.[ANNOTATIONS.restoreState]).toBe('Failed');
    expect(await stateEvents('other/other-20260101T000000Z/')).toEqual(['Failed', 'Validating']);
    expect(condition(c, 'RestoreReady')).toMatchObject({ status: 'False', reason: 'Failed', message: `Restore from "other/other-20260101T000000Z/" failed (ForeignKey): "other/other-20260101T000000Z/" is a backup of cluster other, not of ${cluster}` });
    const tcp = await kube.get<KubeObject & { spec: { controlPlane: { deployment?: { replicas?: number } } } }>(tcpRef(ns, names.tenantControlPlane));
    expect(tcp.spec.controlPlane.deployment?.replicas).toBe(1);
    expect((await kube.get<KubeObject & { spec: { replicas: number } }>(STATEFULSET(ns, sts))).spec.replicas).toBe(1);
  }, 120_000);

  it('brings back the rows of the backup: deleted Secrets return, later ones go, changed ones revert', async () => {
    const t = await tenant();
    for (let i = 0; i < 20; i++) await t.create(CORE('secrets', 'default'), { apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${i}` }, stringData: { v: `before-${i}` } } as KubeObject);
    const job = await createJobFromCronJob(kube, ns, names.backupCronJob);
    await waitFor('backup Job complete', async () => (await kube.get<JobObject>(JOB(ns, job.metadata.name))).status?.conditions?.some((x) => x.type === 'Complete' && x.status === 'True'), { timeoutMs: 120_000, intervalMs: 500 });
    const backedUp = await waitFor('latestBackupKey', async () => (await get()).status?.latestBackupKey, { timeoutMs: 60_000, intervalMs: 500 });

    // What happens after the backup, and must be undone.
    for (let i = 0; i < 10; i++) await t.delete(CORE('secrets', 'default', `s-${i}`));
    await t.create(CORE('secrets', 'default'), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'after-backup' }, stringData: { v: 'new' } } as KubeObject);
    await t.patch(CORE('secrets', 'default', 's-10'), { stringData: { v: 'changed' } }, 'merge');
    expect(await secretValue(t, 's-10')).toBe('changed');

    const started = Date.now();
    await requestRestore(backedUp);
    const seen: string[] = [];
    const c = await waitEnd(seen);
    const seconds = (Date.now() - started) / 1000;
    console.log(JSON.stringify({ restoreSeconds: seconds, polled: seen }));
    // Every state announced once by an event; the polls saw them in this order.
    expect(await stateEvents(backedUp)).toEqual([...ORDER].sort());
    expect(seen).toEqual(ORDER.filter((s) => seen.includes(s)));
    expect(seen.at(-1)).toBe('Succeeded');
    expect(condition(c, 'RestoreReady')).toMatchObject({ status: 'True', reason: 'Succeeded', message: `Restore from "${backedUp}" complete` });
    expect(c.status?.latestRestoreKey).toBe(backedUp);

    await waitFor('cluster Ready again', async () => condition(await get(), 'Ready')?.status === 'True', { timeoutMs: 120_000, intervalMs: 1000 });
    // The backup CronJob was suspended for the restore (no snapshot of an etcd being replaced) and runs again.
    await waitFor('backup CronJob resumed', async () => (await kube.get<KubeObject & { spec: { suspend?: boolean } }>(CRONJOB(ns, names.backupCronJob))).spec.suspend !== true, { timeoutMs: 30_000, intervalMs: 500 });
    expect(await cronJobEvents()).toEqual(expect.arrayContaining(['BackupCronJobUpdated']));
    const after = await tenant();
    const values = await waitFor('tenant API answers', async () => Promise.all(Array.from({ length: 20 }, (_, i) => secretValue(after, `s-${i}`))), { timeoutMs: 60_000, intervalMs: 500 });
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => `before-${i}`));
    expect(await secretValue(after, 'after-backup')).toBeNull();
    // What an operator sees.
    const shown = await runKdc(['status', cluster, '-n', ns], kdcEnv(platform(), join(platform().dir, id)));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`Restored:    ${backedUp} at `);
    expect(shown.stdout).toMatch(/RestoreReady\s+True\s+Succeeded/);
    // The data dir etcd ran on before the restore is kept beside the restored one.
    expect(existsSync(join(runner.claimPath(ns, `data-${sts}-0`), 'data.pre-restore', 'member'))).toBe(true);
  }, 420_000);
});
