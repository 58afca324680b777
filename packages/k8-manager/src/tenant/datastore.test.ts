import { describe, expect, it } from 'vitest';
import type { KubeObject, TenantControlPlaneObject } from '@kdc/shared';
import {
  clusterOfTcp,
  dataStoreNeighbours,
  storageOf,
  tcpPlacement,
  type TcpPlacement,
  type TcpsByDataStore,
} from './datastore.ts';

const tcp = (ns: string, name: string, dataStore?: string, cluster?: string): KubeObject => ({
  metadata: { namespace: ns, name, ...(cluster ? { labels: { 'k8s.kube-dc.com/kdccluster': cluster } } : {}) },
  ...(dataStore ? { status: { storage: { dataStoreName: dataStore } } } : {}),
});
/** What the informer's DataStore index answers for these objects (it is current before a mapper runs). */
const cache = (items: KubeObject[]): TcpsByDataStore => ({
  get: (name) => items.filter((t) => storageOf(t) === name) as TcpPlacement[],
});

describe('which clusters a TenantControlPlane event concerns (finding 5: a DataStore that becomes shared)', () => {
  const victim = tcp('acme', 'web-cp', 'ds-1', 'web');
  const other = tcp('beta', 'db-cp', 'ds-2', 'db');
  it('every cluster on the DataStore a control plane arrives on, so their backups change at once', () => {
    const arriving = tcp('evil', 'x-cp', 'ds-1');
    const items = [victim, other, arriving];
    const neighbours = dataStoreNeighbours(cache(items));
    expect(neighbours(arriving, 'add').sort()).toEqual(['acme/web', 'evil/x']);
    // It leaves: the ones still there.
    items.pop();
    expect(neighbours(arriving, 'delete')).toEqual(['acme/web']);
  });
  it('moving from one DataStore to another tells both', () => {
    const items = [victim, other, tcp('evil', 'x-cp', 'ds-1')];
    const neighbours = dataStoreNeighbours(cache(items));
    neighbours(items[2]!, 'add');
    items[2] = tcp('evil', 'x-cp', 'ds-2');
    expect(neighbours(items[2], 'update').sort()).toEqual(['acme/web', 'beta/db', 'evil/x']);
  });
  it('a status write that keeps the DataStore tells nobody else (1,000 control planes on one)', () => {
    const items = Array.from({ length: 1_000 }, (_, i) => tcp(`t${i}`, `c${i}-cp`, 'default'));
    const neighbours = dataStoreNeighbours(cache(items));
    for (const t of items) neighbours(t, 'add');
    // Positive control: the first sighting told the whole DataStore.
    expect(neighbours(tcp('t0', 'new-cp', 'default'), 'add')).toHaveLength(1_000);
    for (const t of items) expect(neighbours(t, 'update')).toEqual([]);
  });
  it('nothing when the control plane reports no DataStore yet', () => {
    expect(dataStoreNeighbours(cache([victim]))(tcp('evil', 'x-cp'), 'add')).toEqual([]);
  });
  it.each([
    [tcp('acme', 'web-cp', undefined, 'web'), 'acme/web'],
    [tcp('acme', 'web-cp'), 'acme/web'],
    [tcp('acme', 'other'), undefined],
  ])('clusterOfTcp %#', (object, expected) => expect(clusterOfTcp(object)).toBe(expected));
});

describe('tcpPlacement: what a sharded k8-manager keeps of every other control plane', () => {
  it('keeps name, namespace, resourceVersion, uid, the cluster label and the DataStore; nothing else', () => {
    const full = {
      apiVersion: 'kamaji.clastix.io/v1alpha1',
      kind: 'TenantControlPlane',
      metadata: {
        name: 'web-cp',
        namespace: 'acme',
        uid: 'u1',
        resourceVersion: '42',
        labels: { 'k8s.kube-dc.com/kdccluster': 'web', shard: 'b' },
        annotations: { big: 'x'.repeat(4096) },
      },
      spec: { controlPlane: { deployment: { replicas: 3 } } },
      status: { storage: { dataStoreName: 'ds-1', certificate: 'pem' }, kubernetesResources: { version: {} } },
    } as unknown as TenantControlPlaneObject;
    const placement = tcpPlacement(full);
    expect(placement).toEqual({
      metadata: {
        name: 'web-cp',
        namespace: 'acme',
        uid: 'u1',
        resourceVersion: '42',
        labels: { 'k8s.kube-dc.com/kdccluster': 'web' },
      },
      status: { storage: { dataStoreName: 'ds-1' } },
    });
    expect(JSON.stringify(placement).length).toBeLessThan(JSON.stringify(full).length / 20);
    // What the watches and the DataStore index read of it is what they read of the whole object.
    expect(clusterOfTcp(placement)).toBe(clusterOfTcp(full));
    expect(storageOf(placement)).toBe(storageOf(full));
    const bare = tcpPlacement({ metadata: { name: 'x-cp', namespace: 'evil' } } as TenantControlPlaneObject);
    expect(bare).toEqual({ metadata: { name: 'x-cp', namespace: 'evil' } });
    expect(clusterOfTcp(bare)).toBe('evil/x');
  });
});
