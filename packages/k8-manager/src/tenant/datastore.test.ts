import { describe, expect, it } from 'vitest';
import type { KubeObject, TenantControlPlaneObject } from '@kdc/shared';
import { clusterOfTcp, dataStoreNeighbours, storageOf, type TcpsByDataStore } from './datastore.ts';

const tcp = (ns: string, name: string, dataStore?: string, cluster?: string): KubeObject => ({
  metadata: { namespace: ns, name, ...(cluster ? { labels: { 'k8s.kube-dc.com/kdccluster': cluster } } : {}) },
  ...(dataStore ? { status: { storage: { dataStoreName: dataStore } } } : {}),
});
/** What the informer's DataStore index answers for these objects (it is current before a mapper runs). */
const cache = (items: KubeObject[]): TcpsByDataStore => ({
  get: (name) => items.filter((t) => storageOf(t) === name) as TenantControlPlaneObject[],
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
