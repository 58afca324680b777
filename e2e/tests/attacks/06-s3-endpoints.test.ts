import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupStore } from '@kdc/backup-envelope';
import {
  ANNOTATIONS,
  BACKUP_CREDENTIAL_KEYS,
  BACKUP_JOB,
  KDC_API_VERSION,
  LABELS,
  clusterNames,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { startHostileS3, type HostileS3 } from '../../src/hostile-s3.ts';
import { CRONJOB, JOB } from '../../src/controllers/jobs.ts';
import type { K8ManagerProcess } from '../../src/k8-manager.ts';
import { TCP } from '../../src/restore-fixture.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import {
  condition,
  createNamespace,
  DATASTORE,
  kdc,
  management,
  shardControllers,
  unique,
  type TestCondition,
} from '../helpers.ts';

// Finding 6: spec.backup.s3Endpoint is the tenant's choice, and the shared k8-manager read from
// it without limits: a whole metadata.json into memory, listing pages for as long as the server
// says "more". A tenant's endpoint serving an endless body or endless pages, plus a restore-from
// annotation, OOM-killed k8-manager for every tenant, in a loop. Required: endpoints come from an
// allow-list in platform configuration (a refused one is a condition, and no request is made);
// every bucket read has a size limit, a page limit and a deadline.

type Cluster = KubeObject & { status?: { phase?: string; observedGeneration?: number; conditions?: TestCondition[] } };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const MIB = 1024 * 1024;
/** Far above what k8-manager needs, far below what an unbounded read reaches: past it the test stops the process. */
const RSS_WATCHDOG = 1536 * MIB;

function rssOf(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

describe('attack 06: a tenant points its backups at an S3 endpoint it controls', () => {
  const kube = management();
  const id = unique('a06');
  const bucket = 'hostile-a06';
  const stops: { stop(): Promise<void> }[] = [];
  let allowed: HostileS3;
  let refused: HostileS3;
  let manager: K8ManagerProcess;
  let rss = { start: 0, max: 0, killed: false };
  let sampler: NodeJS.Timeout;

  beforeAll(async () => {
    allowed = await startHostileS3(bucket);
    refused = await startHostileS3(bucket);
    // The allow-listed endpoint answers every listing with 1,000 more backups, for ever.
    allowed.endlessListing((cluster, page) =>
      Array.from({ length: 1000 }, (_, i) => {
        const t = new Date(Date.UTC(2026, 0, 1) + (page * 1000 + i) * 1000)
          .toISOString()
          .replace(/[-:]/g, '')
          .replace(/\.\d{3}Z$/, 'Z');
        return `${cluster}/${cluster}-${t}/`;
      }),
    );
    const controllers = await shardControllers(id, {
      OBSERVE_PERIOD: '2s',
      S3_ENDPOINT_ALLOWLIST: `${allowed.url}, https://s3.example.com`,
    });
    manager = controllers[1];
    stops.push(...controllers);
    const pid = manager.process.pid;
    rss = { start: rssOf(pid) ?? 0, max: 0, killed: false };
    sampler = setInterval(() => {
      const now = rssOf(pid);
      if (now === undefined) return;
      rss.max = Math.max(rss.max, now);
      if (now > RSS_WATCHDOG && !rss.killed) {
        rss.killed = true;
        process.kill(pid, 'SIGKILL');
      }
    }, 50);
  }, 180_000);
  afterAll(async () => {
    clearInterval(sampler);
    for (const s of stops.reverse()) await s.stop();
    await allowed?.close();
    await refused?.close();
  });

  /** An encrypted cluster on its own (unreachable) etcd DataStore, backing up to `server`, asking to restore from it. */
  async function tenantCluster(prefix: string, server: HostileS3): Promise<{ ns: string; cluster: string }> {
    const ns = await createNamespace(kube, prefix);
    const cluster = unique('c');
    const endpoint = server.url;
    // The backup the restore names: a metadata.json that never ends.
    server.put(`${cluster}/${cluster}-20260101T000000Z/metadata.json`, { kind: 'endless' });
    const dataStore = `ds-${cluster}`;
    await kube.create(DATASTORE(), {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'DataStore',
      metadata: { name: dataStore, annotations: { [ANNOTATIONS.allowedNamespaces]: '*' } },
      spec: {
        driver: 'etcd',
        endpoints: ['127.0.0.1:1'],
        tlsConfig: {
          certificateAuthority: { certificate: { content: b64('ca') }, privateKey: { content: b64('key') } },
          clientCertificate: { certificate: { content: b64('crt') }, privateKey: { content: b64('key') } },
        },
      },
    });
    await kube.create(at(RESOURCES.secret, ns), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'managed-k8s-backups' },
      stringData: {
        [BACKUP_CREDENTIAL_KEYS.accessKeyId]: 'tenant',
        [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: 'tenant-secret',
      },
    });
    await kube.create(at(RESOURCES.secret, ns), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: BACKUP_JOB.datastoreCertsSecret(clusterNames(cluster).tenantControlPlane) },
      stringData: { 'ca.crt': 'x', 'server.crt': 'x', 'server.key': 'x' },
    });
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: {
        name: cluster,
        labels: { 'kdc-e2e/k8m': id },
        annotations: { [ANNOTATIONS.restoreFrom]: `${cluster}/${cluster}-20260101T000000Z/` },
      },
      spec: {
        version: 'v1.35.0',
        controlPlane: { replicas: 1 },
        dataStore,
        encryption: { etcd: { enabled: true } },
        backup: { destinationPath: `s3://${bucket}/`, s3Endpoint: endpoint },
      },
    });
    // Kamaji reports the DataStore the control plane uses.
    const tcp = clusterNames(cluster).tenantControlPlane;
    await waitFor(`TenantControlPlane ${tcp}`, async () => (await kube.getOrNull(TCP(ns, tcp))) !== null, {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    await kube.patch(
      { ...TCP(ns, tcp), subresource: 'status' },
      { status: { storage: { driver: 'etcd', dataStoreName: dataStore } } },
      'merge',
    );
    return { ns, cluster };
  }
  const get = (c: { ns: string; cluster: string }) => kube.get<Cluster>(kdc(c.ns, c.cluster));
  const until = async <T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 90_000) =>
    waitFor(
      what,
      async () => {
        if (rss.killed)
          throw new Error(
            `k8-manager grew past ${RSS_WATCHDOG / MIB} MiB (peak ${Math.round(rss.max / MIB)} MiB from ${Math.round(rss.start / MIB)} MiB) and was stopped`,
          );
        if (!manager.process.running) throw new Error(`k8-manager exited:\n${manager.process.tail()}`);
        return check();
      },
      { timeoutMs, intervalMs: 250 },
    );

  it('an allow-listed endpoint that never stops answering leaves k8-manager up, bounded, and saying why', async () => {
    const hostile = await tenantCluster('tenant-a06', allowed);
    const restore = await until('RestoreReady on the hostile cluster', async () => {
      const ready = condition(await get(hostile), 'RestoreReady');
      return ready && ready.reason !== 'RestoreInProgress' ? ready : undefined;
    });
    expect(restore).toMatchObject({
      status: 'False',
      reason: 'Failed',
      message: expect.stringMatching(/\(BackupUnreadable\): .*metadata\.json.*(larger than|more than) /),
    });

    // The CronJob of an allowed endpoint exists; a finished backup Job makes k8-manager list the bucket.
    const names = clusterNames(hostile.cluster);
    await until(
      'the backup CronJob',
      async () => (await kube.getOrNull(CRONJOB(hostile.ns, names.backupCronJob))) !== null,
    );
    // Labelled as the CronJob controller labels the Jobs it makes: from the CronJob's jobTemplate
    // (the cluster and component labels, and a sharded release's shard labels).
    const cronJob = await kube.get<
      KubeObject & { spec: { jobTemplate: { metadata: { labels: Record<string, string> } } } }
    >(CRONJOB(hostile.ns, names.backupCronJob));
    const jobLabels = cronJob.spec.jobTemplate.metadata.labels;
    expect(jobLabels).toMatchObject({
      [LABELS.kdcCluster]: hostile.cluster,
      [BACKUP_JOB.componentLabel]: BACKUP_JOB.component,
    });
    const job = await kube.create<KubeObject>(JOB(hostile.ns), {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `${names.backupCronJob}-done`, labels: jobLabels },
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'x', image: 'none' }] } } },
    });
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await kube.patch(
      { ...JOB(hostile.ns, job.metadata!.name), subresource: 'status' },
      {
        status: {
          startTime: now,
          completionTime: now,
          succeeded: 1,
          active: 0,
          ready: 0,
          terminating: 0,
          conditions: [
            {
              type: 'SuccessCriteriaMet',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'done',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
            {
              type: 'Complete',
              status: 'True',
              reason: 'CompletionsReached',
              message: 'done',
              lastProbeTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      },
      'merge',
    );
    const backup = await until('BackupReady about the bucket listing', async () => {
      const ready = condition(await get(hostile), 'BackupReady');
      return ready?.reason === 'BucketUnreadable' ? ready : undefined;
    });
    expect(backup).toMatchObject({ status: 'False', message: expect.stringMatching(/listing .* more than \d+ pages/) });
    expect(allowed.requests.some((r) => r.url.includes('list-type=2'))).toBe(true);
    expect(allowed.requests.some((r) => r.url.includes('/metadata.json'))).toBe(true);

    // Positive control: other tenants are reconciled meanwhile.
    const otherNs = await createNamespace(kube, 'tenant-a06-other');
    await kube.create(kdc(otherNs), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: 'web', labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 } },
    });
    await until(
      'the other cluster reconciled',
      async () => (await kube.get<Cluster>(kdc(otherNs, 'web'))).status?.observedGeneration === 1,
      30_000,
    );

    await sleep(5_000);
    expect(manager.process.running).toBe(true);
    expect(rss.killed).toBe(false);
    console.log(
      JSON.stringify({
        k8ManagerRssMiB: { start: Math.round(rss.start / MIB), peak: Math.round(rss.max / MIB) },
        endlessBytesServed: allowed.endlessBytes,
        requests: allowed.requests.length,
      }),
    );
    expect(rss.max).toBeLessThan(rss.start + 160 * MIB);
  }, 300_000);

  it('an endpoint outside the allow-list is refused with a condition, and no request reaches it', async () => {
    const tenant = await tenantCluster('tenant-a06-x', refused);
    const restore = await until('RestoreReady', async () => {
      const ready = condition(await get(tenant), 'RestoreReady');
      return ready && ready.reason !== 'RestoreInProgress' ? ready : undefined;
    });
    expect(restore.message).toMatch(/\(S3EndpointNotAllowed\): .*S3_ENDPOINT_ALLOWLIST/);
    const backup = await until('BackupReady S3EndpointNotAllowed', async () => {
      const ready = condition(await get(tenant), 'BackupReady');
      return ready?.reason === 'S3EndpointNotAllowed' ? ready : undefined;
    });
    expect(backup.message).toContain(refused.url);
    // Several reconciles later: still no CronJob and not one request.
    await sleep(6_000);
    expect(await kube.getOrNull(CRONJOB(tenant.ns, clusterNames(tenant.cluster).backupCronJob))).toBeNull();
    expect(refused.requests).toEqual([]);
  }, 180_000);

  it('a read that stalls after its headers ends at its deadline', async () => {
    allowed.put('stalled/metadata.json', { kind: 'stall' });
    const store = BackupStore.fromSettings({
      endpoint: allowed.url,
      region: 'us-east-1',
      bucket,
      accessKeyId: 'a',
      secretAccessKey: 'b',
      maxAttempts: 1,
      operationTimeoutMs: 2_000,
    });
    const started = Date.now();
    const outcome = await Promise.race([
      store.getText('stalled/metadata.json').then(
        () => 'answered',
        (error: Error) => error.message,
      ),
      sleep(15_000).then(() => 'still waiting after 15 s'),
    ]);
    store.destroy();
    expect(outcome).toMatch(/deadline|timed out|abort/i);
    expect(Date.now() - started).toBeLessThan(6_000);
  });
});
