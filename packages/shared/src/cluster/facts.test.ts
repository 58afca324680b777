import { describe, expect, it } from 'vitest';
import { clusterNames } from '../names.ts';
import { LABELS } from '../names.ts';
import type { KubeClient, KubeObject } from '../runtime/kube.ts';
import { gatherClusterFacts, organizationLookup, organizationView } from './facts.ts';

const cluster = (
  namespace: string,
  name: string,
  enabled: boolean,
  keyRef?: string,
  extra: Record<string, unknown> = {},
) => ({
  metadata: { namespace, name, creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { version: 'v1.35.0', encryption: { etcd: { enabled, ...(keyRef ? { keyRef } : {}) } }, ...extra },
});
const noDataStores = async () => null;

describe('gatherClusterFacts', () => {
  it('finds the encrypted neighbours on the etcd key this cluster names; namesakes elsewhere do not matter', async () => {
    const self = cluster('acme-b', 'prod', true, 'shared');
    const neighbours = [
      cluster('acme-b', 'dev', true, 'shared'),
      cluster('acme-b', 'mine', true, 'own-key'),
      cluster('acme-b', 'off', false, 'shared'),
      cluster('acme-a', 'prod', true, 'shared'),
      cluster('other', 'qa', true, 'shared'),
    ];
    const gather = (own: typeof self) =>
      gatherClusterFacts({
        cluster: own,
        clusters: [own, ...neighbours],
        kmsKey: () => undefined,
        tcp: null,
        platform: { ok: false, missing: [] },
        dataStoreOf: noDataStores,
      });
    const facts = await gather(self);
    expect(facts.otherClusters).toEqual([{ name: 'dev', etcdKeyRef: 'shared' }]);
    expect(facts.attached).toBe(false);
    expect(facts.dataStore).toBeUndefined();
    // A neighbour's own (automatic) key counts when this cluster names it.
    const autoKey = clusterNames('dev').autoEtcdKey;
    const onAuto = await gatherClusterFacts({
      cluster: cluster('acme-b', 'prod', true, autoKey),
      clusters: [cluster('acme-b', 'dev', true)],
      kmsKey: () => undefined,
      tcp: null,
      platform: { ok: false, missing: [] },
      dataStoreOf: noDataStores,
    });
    expect(onAuto.otherClusters).toEqual([{ name: 'dev', etcdKeyRef: autoKey }]);
    // Naming no key, a cluster has its own: no neighbour matters.
    expect((await gather(cluster('acme-b', 'prod', true))).otherClusters).toEqual([]);
  });
  it('looks up only the KMSKeys the spec names, or the automatic one', async () => {
    const key = (name: string) => ({ metadata: { namespace: 'acme-b', name } });
    const looked: string[] = [];
    const kmsKey = (name: string) => (looked.push(name), name === 'missing' ? undefined : key(name));
    const gather = (own: ReturnType<typeof cluster>) =>
      gatherClusterFacts({
        cluster: own,
        clusters: [own],
        kmsKey,
        tcp: null,
        platform: { ok: false, missing: [] },
        dataStoreOf: noDataStores,
      });
    const named = cluster('acme-b', 'prod', true, 'etcd-key', {});
    (named.spec.encryption.etcd as Record<string, unknown>).backup = { keyRef: 'missing' };
    expect((await gather(named)).kmsKeys).toEqual([key('etcd-key')]);
    expect(looked).toEqual(['etcd-key', 'missing']);
    looked.length = 0;
    expect((await gather(cluster('acme-b', 'prod', true))).kmsKeys).toEqual([key('prod-etcd')]);
    expect(looked).toEqual(['prod-etcd']);
  });
  it("reads the DataStore the spec names, with the platform's grant", async () => {
    const self = cluster('acme-b', 'prod', false, undefined, { dataStore: 'etcd-gold' });
    const dataStoreOf = async (name: string) =>
      name === 'etcd-gold'
        ? { metadata: { name, annotations: { 'kube-dc.com/allowed-namespaces': 'acme-a,acme-b' } } }
        : null;
    const facts = await gatherClusterFacts({
      cluster: self,
      clusters: [self],
      kmsKey: () => undefined,
      tcp: null,
      platform: { ok: false, missing: [] },
      dataStoreOf,
    });
    expect(facts.dataStore).toEqual({ name: 'etcd-gold', found: true, allowedNamespaces: 'acme-a,acme-b' });
    const missing = await gatherClusterFacts({
      cluster: cluster('acme-b', 'x', false, undefined, { dataStore: 'nope' }),
      clusters: [],
      kmsKey: () => undefined,
      tcp: null,
      platform: { ok: false, missing: [] },
      dataStoreOf,
    });
    expect(missing.dataStore).toEqual({ name: 'nope', found: false, allowedNamespaces: undefined });
  });
  it('carries the controller clock (break-glass is judged against it), the wall clock by default', async () => {
    const self = cluster('acme-b', 'prod', false);
    const now = new Date('2026-11-22T10:00:00Z');
    expect(
      (
        await gatherClusterFacts({
          cluster: self,
          clusters: [],
          kmsKey: () => undefined,
          tcp: null,
          platform: { ok: false, missing: [] },
          dataStoreOf: noDataStores,
          now,
        })
      ).now,
    ).toBe(now);
    const before = Date.now();
    const wall = (
      await gatherClusterFacts({
        cluster: self,
        clusters: [],
        kmsKey: () => undefined,
        tcp: null,
        platform: { ok: false, missing: [] },
        dataStoreOf: noDataStores,
      })
    ).now.getTime();
    expect(wall).toBeGreaterThanOrEqual(before);
    expect(wall).toBeLessThanOrEqual(Date.now());
  });
});

describe('organizationView: what a Namespace cache keeps', () => {
  it('the name, resourceVersion, uid and the organisation label; the lookup reads the same answer from it', async () => {
    const full: KubeObject = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 't1',
        uid: 'u',
        resourceVersion: '7',
        labels: { [LABELS.organization]: 'acme', 'kubernetes.io/metadata.name': 't1' },
        annotations: { note: 'x'.repeat(1000) },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
    const view = organizationView(full);
    expect(view).toEqual({
      metadata: { name: 't1', uid: 'u', resourceVersion: '7', labels: { [LABELS.organization]: 'acme' } },
    });
    const unlabelled = organizationView({ metadata: { name: 't2', resourceVersion: '8' } });
    expect(unlabelled).toEqual({ metadata: { name: 't2', resourceVersion: '8' } });
    const lookup = organizationLookup({} as KubeClient, {
      namespaces: { get: (name) => (name === 't1' ? view : unlabelled) },
    });
    expect(await lookup('t1')).toBe('acme');
    expect(await lookup('t2')).toBeUndefined();
  });
});

describe('organizationLookup', () => {
  const ns = (name: string, organization?: string): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, ...(organization ? { labels: { [LABELS.organization]: organization } } : {}) },
  });
  /** A KubeClient that answers namespace GETs from `objects`, counting them. */
  const kubeOf = (objects: Record<string, KubeObject>) => {
    const reads: string[] = [];
    const kube = {
      getOrNull: async (ref: { name?: string }) => {
        reads.push(ref.name!);
        return objects[ref.name!] ?? null;
      },
    } as unknown as KubeClient;
    return { kube, reads };
  };

  it('answers from the Namespace cache without a request, and sees a changed label at once', async () => {
    const cache = new Map([['t1', ns('t1', 'acme')]]);
    const { kube, reads } = kubeOf({ t1: ns('t1', 'stale') });
    const organizationOf = organizationLookup(kube, { namespaces: { get: (name) => cache.get(name) } });
    expect(await organizationOf('t1')).toBe('acme');
    cache.set('t1', ns('t1', 'globex'));
    expect(await organizationOf('t1')).toBe('globex');
    cache.set('t1', ns('t1'));
    expect(await organizationOf('t1')).toBeUndefined();
    expect(reads).toEqual([]);
  });

  it('reads a namespace the cache has not seen yet, every time, instead of guessing "no organisation"', async () => {
    const { kube, reads } = kubeOf({ new: ns('new', 'acme') });
    const organizationOf = organizationLookup(kube, { namespaces: { get: () => undefined } });
    expect(await organizationOf('new')).toBe('acme');
    expect(await organizationOf('new')).toBe('acme');
    expect(await organizationOf('gone')).toBeUndefined();
    expect(reads).toEqual(['new', 'new', 'gone']);
  });

  it('without a cache, reads through a TTL cache (the positive control: the second ask is not a request)', async () => {
    const { kube, reads } = kubeOf({ t1: ns('t1', 'acme') });
    const organizationOf = organizationLookup(kube, { ttlMs: 60_000 });
    expect(await organizationOf('t1')).toBe('acme');
    expect(await organizationOf('t1')).toBe('acme');
    expect(reads).toEqual(['t1']);
  });
});
