import { describe, expect, it } from 'vitest';
import type { Informer, KubeObject, TenantControlPlaneObject } from '@kdc/shared';
import { clusterOfTcp, clustersOnDataStore } from './datastore.ts';

const tcp = (ns: string, name: string, dataStore?: string, cluster?: string): KubeObject => ({
  metadata: { namespace: ns, name, ...(cluster ? { labels: { 'k8s.kube-dc.com/kdccluster': cluster } } : {}) },
  ...(dataStore ? { status: { storage: { dataStoreName: dataStore } } } : {}),
});
const cache = (items: KubeObject[]) => ({ list: () => items }) as unknown as Informer<TenantControlPlaneObject>;

describe('which clusters a TenantControlPlane event concerns (finding 5: a DataStore that becomes shared)', () => {
  const victim = tcp('acme', 'web-cp', 'ds-1', 'web');
  const other = tcp('beta', 'db-cp', 'ds-2', 'db');
  it('every cluster on the DataStore the control plane reports, so their backups change at once', () => {
    const arriving = tcp('evil', 'x-cp', 'ds-1');
    expect(clustersOnDataStore(cache([victim, other, arriving]), arriving).sort()).toEqual(['acme/web', 'evil/x']);
    // A control plane that left: the ones still there.
    expect(clustersOnDataStore(cache([victim, other]), arriving)).toEqual(['acme/web']);
  });
  it('nothing when the control plane reports no DataStore yet', () => {
    expect(clustersOnDataStore(cache([victim]), tcp('evil', 'x-cp'))).toEqual([]);
  });
  it.each([
    [tcp('acme', 'web-cp', undefined, 'web'), 'acme/web'],
    [tcp('acme', 'web-cp'), 'acme/web'],
    [tcp('acme', 'other'), undefined],
  ])('clusterOfTcp %#', (object, expected) => expect(clusterOfTcp(object)).toBe(expected));
});
