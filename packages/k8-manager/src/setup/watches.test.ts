import { describe, expect, it } from 'vitest';
import {
  ObjectIndex,
  type Cache,
  type KdcClusterObject,
  type KubeObject,
  type TenantControlPlaneObject,
} from '@kdc/shared';
import { storageOf } from '../tenant/datastore.ts';
import { controlPlaneEvents, ownedBy } from './watches.ts';

const clusters = (keys: string[]) =>
  ({
    get: (name: string, namespace?: string) =>
      keys.includes(`${namespace}/${name}`) ? ({ metadata: { name, namespace } } as KdcClusterObject) : undefined,
    list: () => [],
  }) as unknown as Cache<KdcClusterObject>;

describe('secondary events of a sharded k8-manager', () => {
  it("keeps only this shard's clusters", () => {
    expect(ownedBy(clusters(['a/web', 'b/db']))(['a/web', 'c/other', 'b/db', 'a/db'])).toEqual(['a/web', 'b/db']);
  });
  it("a control plane's own cluster on every event, its DataStore's neighbours only when it arrives", () => {
    const items: KubeObject[] = [
      { metadata: { namespace: 'a', name: 'web-cp' }, status: { storage: { dataStoreName: 'ds' } } },
      { metadata: { namespace: 'b', name: 'db-cp' }, status: { storage: { dataStoreName: 'ds' } } },
    ];
    const onDataStore = new ObjectIndex<TenantControlPlaneObject>(storageOf);
    for (const t of items) onDataStore.apply('add', t as TenantControlPlaneObject);
    const events = controlPlaneEvents(onDataStore);
    expect(events(items[1]!, 'add').sort()).toEqual(['a/web', 'b/db']);
    expect(events(items[1]!, 'update')).toEqual(['b/db']);
  });
});
