// The `namespace/name` key every cache, queue and index here files an object under.
import type { KubeObject } from './kube.ts';

export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata ?? {};
  return namespace ? `${namespace}/${name}` : `${name}`;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const index = key.indexOf('/');
  return index < 0 ? { name: key } : { namespace: key.slice(0, index), name: key.slice(index + 1) };
}
