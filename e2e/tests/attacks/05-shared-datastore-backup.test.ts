import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKUP_JOB, LABELS, type KubeObject } from '@kdc/shared';
import { CRONJOB, JOB, createJobFromCronJob, type JobObject } from '../../src/controllers/jobs.ts';
import { conditionOf, startRestoreFixture, TCP, type RestoreFixture } from '../../src/restore-fixture.ts';
import { sleep, waitFor } from '../../src/wait.ts';
import { createNamespace, platform, shardControllers, unique } from '../helpers.ts';

// Finding 5: an etcd snapshot cannot be limited to one tenant's prefix, so a DataStore that a
// second control plane starts using must stop being backed up at once. k8-manager used to set
// BackupReady=False/SharedDataStore and leave the CronJob in place, with the DataStore endpoints
// and client certificate in it: every run kept copying the neighbour's rows into this tenant's
// bucket. The CronJob must go (or be suspended) the moment the DataStore is shared.

type CronJob = KubeObject & {
  spec: {
    suspend?: boolean;
    jobTemplate: { spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } } };
  };
};

describe('attack 05: a DataStore that becomes shared keeps being backed up', () => {
  let f: RestoreFixture;
  let neighbourNs: string;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), {
      id: unique('a05'),
      prefix: 'tenant',
      controllers: (id, env) => shardControllers(id, env),
    });
    neighbourNs = await createNamespace(f.kube, 'neighbour');
  }, 420_000);
  afterAll(async () => {
    await f?.stop();
  });

  const cronJob = () => f.kube.getOrNull<CronJob>(CRONJOB(f.ns, f.names.backupCronJob));
  const activeBackupJobs = async () =>
    (
      await f.kube.list<JobObject>(JOB(f.ns), {
        labelSelector: `${LABELS.kdcCluster}=${f.cluster},${BACKUP_JOB.componentLabel}=${BACKUP_JOB.component}`,
      })
    ).items.filter(
      (j) =>
        !j.metadata.deletionTimestamp &&
        !j.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True'),
    );

  it('the CronJob stops existing once a second control plane is on the DataStore, and returns when it leaves', async () => {
    // Before: backups of the dedicated DataStore run.
    expect(await f.backupNow()).toMatch(new RegExp(`^${f.cluster}/${f.cluster}-\\d{8}T\\d{6}Z/$`));
    expect(await cronJob()).not.toBeNull();

    // Another control plane starts using the DataStore (Kamaji reports it in its status).
    const neighbour = 'neighbour-cp';
    await f.kube.create(TCP(neighbourNs), {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'TenantControlPlane',
      metadata: { name: neighbour, namespace: neighbourNs },
      spec: {
        dataStore: f.dataStore,
        controlPlane: { deployment: { replicas: 1 }, service: { serviceType: 'ClusterIP' } },
        kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
        networkProfile: { port: 6443 },
      },
    });
    await f.kube.patch(
      { ...TCP(neighbourNs, neighbour), subresource: 'status' },
      { status: { storage: { driver: 'etcd', dataStoreName: f.dataStore } } },
      'merge',
    );
    const shared = Date.now();

    const c = await waitFor(
      'BackupReady SharedDataStore',
      async () => {
        const x = await f.get();
        return conditionOf(x, 'BackupReady')?.reason === 'SharedDataStore' ? x : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(conditionOf(c, 'BackupReady')?.message).toContain(`${neighbourNs}/${neighbour}`);
    const gone = await waitFor(
      'the CronJob to be removed or suspended',
      async () => {
        const cj = await cronJob();
        return cj === null || cj.spec.suspend === true ? { cj } : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    ).catch(async () => {
      const cj = await cronJob();
      const env = cj?.spec.jobTemplate.spec.template.spec.containers[0]?.env ?? [];
      throw new Error(
        `the backup CronJob of a shared DataStore is still active ${Math.round((Date.now() - shared) / 1000)} s after the sharing (suspend ${cj?.spec.suspend}, ETCD_ENDPOINT ${env.find((e) => e.name === 'ETCD_ENDPOINT')?.value})`,
      );
    });
    // No backup Job can start from it, none runs, and it stays that way over several reconciles.
    if (gone.cj === null)
      await expect(createJobFromCronJob(f.kube, f.ns, f.names.backupCronJob)).rejects.toMatchObject({ status: 404 });
    await sleep(8_000);
    const later = await cronJob();
    expect(later === null || later.spec.suspend === true).toBe(true);
    expect(await activeBackupJobs()).toEqual([]);

    // Positive control: when the neighbour leaves, backups come back.
    await f.kube.delete(TCP(neighbourNs, neighbour));
    await waitFor(
      'the CronJob back, active',
      async () => {
        const cj = await cronJob();
        return cj !== null && cj.spec.suspend !== true && conditionOf(await f.get(), 'BackupReady')?.status === 'True';
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 300_000);
});
