import { isDeepStrictEqual } from 'node:util';
import { type KubeClient, type KubeObject, type ResourceRef, resourcePath } from './kube.ts';

/**
 * Writes `status` through the status subresource only when it differs from what the object
 * already carries, so a steady-state reconcile writes nothing. Returns whether it wrote.
 */
export async function updateStatusIfChanged(
  client: KubeClient,
  ref: ResourceRef,
  object: KubeObject,
  status: unknown,
): Promise<boolean> {
  if (isDeepStrictEqual(stripUndefined(object.status), stripUndefined(status))) return false;
  await client.request('PUT', resourcePath({ ...ref, subresource: 'status' }), {
    body: { ...object, status },
  });
  return true;
}

/** JSON round-trip semantics: undefined fields do not exist on the wire. */
export function stripUndefined<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}
