import { describe, expect, it } from 'vitest';
import type { KubeObject } from './kube.ts';
import { ObjectIndex } from './object-index.ts';

const tcp = (ns: string, name: string, dataStore?: string): KubeObject => ({
  metadata: { namespace: ns, name },
  ...(dataStore ? { status: { storage: { dataStoreName: dataStore } } } : {}),
});
const dataStoreOf = (o: KubeObject) =>
  (o.status as { storage?: { dataStoreName?: string } } | undefined)?.storage?.dataStoreName;
const names = (objects: KubeObject[]) => objects.map((o) => `${o.metadata!.namespace}/${o.metadata!.name}`).sort();

describe('ObjectIndex', () => {
  it('files objects by their value and follows updates, moves and deletes', () => {
    const index = new ObjectIndex(dataStoreOf);
    index.apply('add', tcp('a', 'web', 'ds-1'));
    index.apply('add', tcp('b', 'db', 'ds-1'));
    index.apply('add', tcp('c', 'new')); // no value yet: filed nowhere
    expect(names(index.get('ds-1'))).toEqual(['a/web', 'b/db']);
    index.apply('update', tcp('c', 'new', 'ds-2'));
    index.apply('update', tcp('b', 'db', 'ds-2')); // moved
    expect(names(index.get('ds-1'))).toEqual(['a/web']);
    expect(names(index.get('ds-2'))).toEqual(['b/db', 'c/new']);
    index.apply('update', tcp('a', 'web')); // lost its value
    index.apply('delete', tcp('c', 'new', 'ds-2'));
    expect(index.get('ds-1')).toEqual([]);
    expect(names(index.get('ds-2'))).toEqual(['b/db']);
  });
  it('keeps the newest copy of an object whose value did not change', () => {
    const index = new ObjectIndex(dataStoreOf);
    index.apply('add', tcp('a', 'web', 'ds-1'));
    const newer = { ...tcp('a', 'web', 'ds-1'), metadata: { namespace: 'a', name: 'web', resourceVersion: '9' } };
    index.apply('update', newer);
    expect(index.get('ds-1')).toEqual([newer]);
  });
  it('the same name in two namespaces is two objects', () => {
    const index = new ObjectIndex(dataStoreOf);
    index.apply('add', tcp('a', 'cp', 'ds'));
    index.apply('add', tcp('b', 'cp', 'ds'));
    index.apply('delete', tcp('a', 'cp', 'ds'));
    expect(names(index.get('ds'))).toEqual(['b/cp']);
  });
});
