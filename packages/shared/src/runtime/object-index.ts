import type { KubeObject } from './kube.ts';
import { objectKey } from './object-key.ts';

type IndexEvent = 'add' | 'update' | 'delete';

/**
 * client-go's Indexer for one index: an informer's objects grouped by a value each yields (the
 * DataStore a TenantControlPlane reports, say), kept current by the informer's own events before
 * any handler sees them. Asking "who else is on this DataStore" is then one lookup, not a scan of
 * every object on every reconcile.
 */
export class ObjectIndex<T extends KubeObject> {
  /** Where each object was last filed, so an update or delete finds its old bucket. */
  private readonly filedUnder = new Map<string, string>();
  private readonly buckets = new Map<string, Map<string, T>>();

  private readonly valueOf: (object: T) => string | undefined;

  constructor(valueOf: (object: T) => string | undefined) {
    this.valueOf = valueOf;
  }

  apply(event: IndexEvent, object: T): void {
    const key = objectKey(object);
    const before = this.filedUnder.get(key);
    if (before !== undefined) {
      const bucket = this.buckets.get(before)!;
      bucket.delete(key);
      if (bucket.size === 0) this.buckets.delete(before);
      this.filedUnder.delete(key);
    }
    const value = event === 'delete' ? undefined : this.valueOf(object);
    if (value === undefined) return;
    let bucket = this.buckets.get(value);
    if (!bucket) this.buckets.set(value, (bucket = new Map<string, T>()));
    bucket.set(key, object);
    this.filedUnder.set(key, value);
  }

  /** The objects filed under `value`, in no particular order. */
  get(value: string): T[] {
    return [...(this.buckets.get(value)?.values() ?? [])];
  }
}
