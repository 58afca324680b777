import { z } from 'zod';
import { type KubeObject, at, RESOURCES } from '@kdc/shared';

// OpenBao work that must still happen after a KdcCluster or KMSKey is gone, recorded as a
// ConfigMap in the controllers' own namespace (tenants have no access there) before the object's
// finalizer is released. Deletion then never waits on OpenBao; the cleanup controller finishes
// each task when it can (retrying with backoff) and deletes it. A pending task is visible as a
// ConfigMap, in a metric and in an alert (docs/runbook.md).

export const CLEANUP_LABEL = 'kube-dc.com/cleanup';
export const CLEANUP_DATA_KEY = 'task.json';

export const cleanupTaskSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('destroyTransitKey'),
    organization: z.string().optional(),
    namespace: z.string(),
    kmsKey: z.string(),
    /** The KMSKey's uid: a key is destroyed only while the ownership registry still names it. */
    uid: z.string(),
    /** Names the key may have (resolved name first); the registry decides which one is this KMSKey's. */
    candidates: z.array(z.string()).min(1),
    /** RFC 3339: not before this time (the deletion countdown). */
    due: z.string(),
  }),
  z.object({
    kind: z.literal('removeClusterAccess'),
    organization: z.string().optional(),
    namespace: z.string(),
    cluster: z.string(),
    uid: z.string(),
  }),
]);

export type CleanupTask = z.infer<typeof cleanupTaskSchema>;

const PREFIX: Record<CleanupTask['kind'], string> = {
  destroyTransitKey: 'kdc-cleanup-key',
  removeClusterAccess: 'kdc-cleanup-access',
};

/** One task per object (by uid): recording it twice is a no-op. */
export function cleanupTaskName(kind: CleanupTask['kind'], uid: string): string {
  return `${PREFIX[kind]}-${uid}`;
}

export function buildCleanupTask(task: CleanupTask): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: cleanupTaskName(task.kind, task.uid), labels: { [CLEANUP_LABEL]: task.kind } },
    data: { [CLEANUP_DATA_KEY]: JSON.stringify(task) },
  };
}

export type ParsedTask = { ok: true; task: CleanupTask } | { ok: false; error: string };

export function parseCleanupTask(object: KubeObject): ParsedTask {
  const text = (object as { data?: Record<string, string> }).data?.[CLEANUP_DATA_KEY];
  if (!text) return { ok: false, error: `no ${CLEANUP_DATA_KEY}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: `${CLEANUP_DATA_KEY} is not JSON` };
  }
  const parsed = cleanupTaskSchema.safeParse(json);
  return parsed.success
    ? { ok: true, task: parsed.data }
    : { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
}

export const CONFIGMAPS = (namespace: string, name?: string) => at(RESOURCES.configMap, namespace, name);
