import {
  OwnershipRegistry,
  splitKey,
  type Informer,
  type KubeClient,
  type KubeObject,
  type Logger,
  type OpenBaoClient,
  type ReconcileResult,
  RESOURCES,
} from '@kdc/shared';
import { Gauge, Counter, type Registry } from 'prom-client';
import { removeClusterAccess } from '../cluster/remove.ts';
import { CONFIGMAPS, parseCleanupTask, type CleanupTask } from './tasks.ts';

export function cleanupMetrics(registry: Registry) {
  return {
    pending: new Gauge({
      name: 'kdc_cleanup_tasks_pending',
      help: 'Recorded OpenBao cleanups not finished yet, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    oldest: new Gauge({
      name: 'kdc_cleanup_task_oldest_age_seconds',
      help: 'Age of the oldest pending cleanup that is due, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
    done: new Counter({
      name: 'kdc_cleanup_tasks_completed_total',
      help: 'Cleanups finished, by kind',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
}

export interface CleanupDeps {
  kube: KubeClient;
  openbao: OpenBaoClient;
  tasks: Informer<KubeObject>;
  namespace: string;
  logger: Logger;
  metrics: ReturnType<typeof cleanupMetrics>;
  now?: () => Date;
}

const KDCCLUSTER = (namespace: string, name: string) => ({ ...RESOURCES.kdcCluster, namespace, name });

/** Finishes recorded cleanups; each step re-reads OpenBao, so a retry after a crash is safe. */
export function cleanupReconciler(deps: CleanupDeps) {
  const now = deps.now ?? (() => new Date());

  function updateGauges(): void {
    const byKind = new Map<string, { count: number; oldest: number }>();
    for (const object of deps.tasks.list()) {
      const parsed = parseCleanupTask(object);
      if (!parsed.ok) continue;
      const since =
        parsed.task.kind === 'destroyTransitKey'
          ? Date.parse(parsed.task.due)
          : Date.parse(object.metadata?.creationTimestamp ?? '');
      const age = Math.max(0, (now().getTime() - since) / 1000) || 0;
      const entry = byKind.get(parsed.task.kind) ?? { count: 0, oldest: 0 };
      byKind.set(parsed.task.kind, { count: entry.count + 1, oldest: Math.max(entry.oldest, age) });
    }
    for (const kind of ['destroyTransitKey', 'removeClusterAccess']) {
      deps.metrics.pending.set({ kind }, byKind.get(kind)?.count ?? 0);
      deps.metrics.oldest.set({ kind }, byKind.get(kind)?.oldest ?? 0);
    }
  }

  async function destroyKey(task: Extract<CleanupTask, { kind: 'destroyTransitKey' }>): Promise<void> {
    const bao = deps.openbao.withNamespace(task.organization);
    const registry = new OwnershipRegistry(bao);
    for (const name of task.candidates) {
      const record = await registry.read(name);
      // Destroy only a key the registry still gives to that KMSKey: a hand-over cancels it.
      if (record?.owner.uid !== task.uid) continue;
      const key = await bao.transit().readKey(name);
      if (key) {
        if (!key.deletionAllowed) await bao.transit().configure(name, { deletion_allowed: true });
        await bao.transit().deleteKey(name);
        deps.logger.warn(
          { transitKey: name, kmsKey: `${task.namespace}/${task.kmsKey}` },
          'Transit key destroyed after its deletion countdown',
        );
      }
      await registry.release(name);
    }
  }

  async function removeAccess(task: Extract<CleanupTask, { kind: 'removeClusterAccess' }>): Promise<void> {
    const successor = await deps.kube.getOrNull(KDCCLUSTER(task.namespace, task.cluster));
    // A cluster of the same name created since owns the (namespace-scoped) names now.
    if (successor && successor.metadata?.uid !== task.uid) {
      deps.logger.info(
        { cluster: `${task.namespace}/${task.cluster}` },
        'cluster re-created: its OpenBao access is kept',
      );
      return;
    }
    await removeClusterAccess(deps.openbao.withNamespace(task.organization), task.namespace, task.cluster);
  }

  return async function reconcile(key: string): Promise<ReconcileResult> {
    updateGauges();
    const { name } = splitKey(key);
    const object = deps.tasks.get(name, deps.namespace);
    if (!object) return {};
    const parsed = parseCleanupTask(object);
    if (!parsed.ok) {
      // Only a platform admin can write here; keep the object for them to look at.
      deps.logger.error({ task: name, problem: parsed.error }, 'cleanup task cannot be read: fix or delete it');
      return {};
    }
    const task = parsed.task;
    if (task.kind === 'destroyTransitKey') {
      const wait = Date.parse(task.due) - now().getTime();
      if (wait > 0) return { requeueAfterMs: wait };
      await destroyKey(task);
    } else {
      await removeAccess(task);
    }
    await deps.kube.delete(CONFIGMAPS(deps.namespace, name));
    deps.metrics.done.inc({ kind: task.kind });
    deps.logger.info({ task: name, kind: task.kind }, 'cleanup finished');
    return {};
  };
}
