import { ANNOTATIONS, BACKUP_JOB, LABELS, ObjectIndex, type KubeObject, type ResourceRef } from '@kdc/shared';
import { describe, expect, it } from 'vitest';
import { clusterOfLabel } from '../setup/watches.ts';
import { OwnedReads, ownedSelector, ownedView } from './owned-reads.ts';

const sa = (name: string, rv = '1'): KubeObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, labels: { [LABELS.kdcCluster]: 'c1' } },
});
const job = (name: string, rv = '1', component: string = BACKUP_JOB.component): KubeObject => ({
  metadata: {
    name,
    namespace: 'ns',
    resourceVersion: rv,
    labels: { [LABELS.kdcCluster]: 'c1', [BACKUP_JOB.componentLabel]: component },
  },
});

/** The apiserver's objects and a cache of them, changed separately, counting what is asked of the apiserver. */
function world() {
  const apiserver = new Map<string, KubeObject>();
  const cached = new Map<string, KubeObject>();
  const jobsIndex = new ObjectIndex<KubeObject>((o) => clusterOfLabel(o)[0]);
  const asked: string[] = [];
  const sources: string[] = [];
  const cache = (plural: string) => ({
    get: (name: string, namespace?: string) => cached.get(`${plural}/${namespace}/${name}`),
    list: () => [...cached.values()],
  });
  const reads = new OwnedReads(
    {
      getOrNull: async <T extends KubeObject>(ref: ResourceRef) => {
        asked.push(`get ${ref.plural}/${ref.name}`);
        return (apiserver.get(`${ref.plural}/${ref.namespace}/${ref.name}`) ?? null) as T | null;
      },
      list: async <T extends KubeObject>(ref: ResourceRef, query?: Record<string, unknown>) => {
        asked.push(`list ${ref.plural} ${String(query?.labelSelector)}`);
        const items = [...apiserver.entries()]
          .filter(([key, o]) => key.startsWith(`${ref.plural}/`) && o.metadata?.labels?.[BACKUP_JOB.componentLabel])
          .map(([, o]) => o);
        return { items: items as T[], metadata: {} };
      },
    },
    { serviceAccounts: cache('serviceaccounts'), cronJobs: cache('cronjobs'), jobsByCluster: jobsIndex },
    (source) => sources.push(source),
  );
  const put = (plural: string, object: KubeObject, where: { apiserver?: boolean; cache?: boolean }) => {
    const key = `${plural}/ns/${object.metadata!.name}`;
    if (where.apiserver) apiserver.set(key, object);
    if (where.cache) {
      cached.set(key, object);
      if (plural === 'jobs') jobsIndex.apply('add', object);
    }
  };
  return { reads, put, asked, sources };
}

describe('OwnedReads', () => {
  it('reads directly until the cache is seen to agree, then from the cache', async () => {
    const w = world();
    w.put('serviceaccounts', sa('c1-kms-plugin'), { apiserver: true, cache: true });
    expect(await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin')).toMatchObject({
      metadata: { name: 'c1-kms-plugin' },
    });
    expect(await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin')).toMatchObject({
      metadata: { name: 'c1-kms-plugin' },
    });
    expect(w.asked).toEqual(['get serviceaccounts/c1-kms-plugin']);
    expect(w.sources).toEqual(['apiserver', 'cache']);
  });

  it('believes an absence the cache agrees with, so a cluster without backups costs no read either', async () => {
    const w = world();
    expect(await w.reads.get('cronJob', 'ns', 'c1-etcd-backup')).toBeNull();
    expect(await w.reads.get('cronJob', 'ns', 'c1-etcd-backup')).toBeNull();
    expect(w.asked).toEqual(['get cronjobs/c1-etcd-backup']);
  });

  it('keeps reading directly an object the cache cannot see (no labels: made before sharding, or by hand)', async () => {
    const w = world();
    w.put('serviceaccounts', sa('c1-kms-plugin'), { apiserver: true });
    for (let i = 0; i < 3; i++) expect(await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin')).not.toBeNull();
    expect(w.asked).toHaveLength(3);
  });

  it('does not trust a cache that is behind (another resourceVersion)', async () => {
    const w = world();
    w.put('cronjobs', sa('c1-etcd-backup', '2'), { apiserver: true });
    w.put('cronjobs', sa('c1-etcd-backup', '1'), { cache: true });
    await w.reads.get('cronJob', 'ns', 'c1-etcd-backup');
    expect(await w.reads.get('cronJob', 'ns', 'c1-etcd-backup')).toMatchObject({ metadata: { resourceVersion: '2' } });
    expect(w.asked).toHaveLength(2);
  });

  it('after a write or delete in the namespace (forget) reads directly again, and sees what the cache had not', async () => {
    const w = world();
    await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin');
    expect(await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin')).toBeNull();
    w.put('serviceaccounts', sa('c1-kms-plugin'), { apiserver: true }); // made by us; the cache has not heard yet
    w.reads.forget('ns');
    expect(await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin')).not.toBeNull();
    w.reads.forget('other'); // another namespace's writes leave this one's trust alone...
    w.put('serviceaccounts', sa('c1-kms-plugin'), { cache: true });
    await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin'); // ...once the cache agrees
    await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin');
    expect(w.sources).toEqual(['apiserver', 'cache', 'apiserver', 'apiserver', 'cache']);
  });

  it('ends trust in a namespace on a write of ours to an owned kind there, not on other writes', async () => {
    const w = world();
    const trusted = async () => {
      const asked = w.asked.length;
      await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin');
      return w.asked.length === asked;
    };
    await w.reads.get('serviceAccount', 'ns', 'c1-kms-plugin');
    w.reads.wrote({ group: '', version: 'v1', plural: 'secrets', namespace: 'ns' });
    w.reads.wrote({ group: '', version: 'v1', plural: 'serviceaccounts', namespace: 'ns', subresource: 'token' });
    w.reads.wrote({ group: 'batch', version: 'v1', plural: 'jobs', namespace: 'other' });
    expect(await trusted()).toBe(true);
    w.reads.wrote({ group: 'batch', version: 'v1', plural: 'cronjobs', namespace: 'ns', name: 'c1-etcd-backup' });
    expect(await trusted()).toBe(false);
  });

  it("lists a cluster's backup Jobs from the cache once it holds the same ones, other components left out", async () => {
    const w = world();
    w.put('jobs', job('c1-etcd-backup-1'), { apiserver: true, cache: true });
    w.put('jobs', job('c1-restore-1', '1', 'restore'), { cache: true });
    const names = async () => (await w.reads.backupJobs('ns', 'c1')).map((j) => j.metadata!.name);
    expect(await names()).toEqual(['c1-etcd-backup-1']);
    expect(await names()).toEqual(['c1-etcd-backup-1']);
    expect(w.asked).toEqual([`list jobs ${LABELS.kdcCluster}=c1,${BACKUP_JOB.componentLabel}=${BACKUP_JOB.component}`]);
    // A Job the cache cannot see (made from a CronJob template without the shard labels): direct again.
    w.put('jobs', job('c1-etcd-backup-0'), { apiserver: true });
    w.reads.forget('ns');
    expect((await names()).sort()).toEqual(['c1-etcd-backup-0', 'c1-etcd-backup-1']);
    expect((await names()).sort()).toEqual(['c1-etcd-backup-0', 'c1-etcd-backup-1']);
    expect(w.asked).toHaveLength(3);
  });
});

describe('ownedView', () => {
  it('keeps identity, our labels, the spec hash, timestamps and a Job outcome; drops the rest', () => {
    const view = ownedView({
      metadata: {
        name: 'c1-etcd-backup-1',
        namespace: 'ns',
        resourceVersion: '7',
        uid: 'u',
        creationTimestamp: '2026-12-07T00:00:00Z',
        labels: { [LABELS.kdcCluster]: 'c1', [BACKUP_JOB.componentLabel]: BACKUP_JOB.component, other: 'x' },
        annotations: { [ANNOTATIONS.specHash]: 'h', other: 'y' },
        managedFields: [{ manager: 'm' }],
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: 'x', uid: 'x' }],
      },
      spec: { template: { spec: { containers: [{ name: 'c', env: [{ name: 'A', value: 'B' }] }] } } },
      status: { conditions: [{ type: 'Complete', status: 'True' }], completionTime: 't', active: 0 },
    });
    expect(view).toEqual({
      metadata: {
        name: 'c1-etcd-backup-1',
        namespace: 'ns',
        resourceVersion: '7',
        uid: 'u',
        creationTimestamp: '2026-12-07T00:00:00Z',
        labels: { [LABELS.kdcCluster]: 'c1', [BACKUP_JOB.componentLabel]: BACKUP_JOB.component },
        annotations: { [ANNOTATIONS.specHash]: 'h' },
      },
      status: { conditions: [{ type: 'Complete', status: 'True' }], completionTime: 't' },
    });
  });

  it('selects ours, and the shard when sharded', () => {
    expect(ownedSelector(undefined)).toBe(LABELS.kdcCluster);
    expect(ownedSelector('shard in (a)')).toBe(`${LABELS.kdcCluster},shard in (a)`);
  });
});
