import type { ReconcileResult } from '@kdc/shared';

/** A cluster still coming up is looked at this often for what no watch reports (sidecars, the tenant's readyz). */
export const PENDING_RESYNC_MS = 5_000;
/** A running restore is looked at this often (StatefulSets and Jobs are not watched). */
export const RESTORE_RESYNC_MS = 2_000;

export interface RequeueInput {
  restoreActive: boolean;
  enabled: boolean;
  forceDisabled: boolean;
  kmsPluginReady: boolean;
  /** What the tenant observation said; undefined when this reconcile did not look (a step is pending). */
  controlPlaneReady: boolean | undefined;
  /** The plan waits for the encryption-reconciler's KMSPreflight condition on the KdcCluster. */
  waitingForPreflight: boolean;
  /** The migration's own next step (0: at once), if one ran. */
  migrationRequeueMs: number | undefined;
  /** This reconcile wrote the cluster's status. */
  statusWritten: boolean;
  observePeriodMs: number;
}

/** When this cluster is reconciled again without a watch event. */
export function requeueAfter(r: RequeueInput): ReconcileResult {
  if (r.restoreActive) return { requeueAfterMs: RESTORE_RESYNC_MS };
  // A force-disabled cluster is looked at again so its warning repeats, at the observe period, not in a hot loop.
  if (!r.enabled) return r.forceDisabled ? { requeueAfterMs: r.observePeriodMs } : {};
  // The plan waits on the KMSPreflight condition of this very KdcCluster and its generation, and
  // nothing else can change that verdict: only a write to the object does, and its watch event
  // comes back to us (the resync is the safety net). A timed poll here filled the queue at 5,000
  // tenants: 1,667 waiting clusters per shard polled every 30 s is 55 reconciles/s against
  // k8-manager's ~5/s while the apiserver is busy creating them, and a cluster whose pre-flight
  // had passed waited behind the polls.
  if (r.waitingForPreflight && r.migrationRequeueMs === undefined) return {};
  // A control plane Kamaji has not reported Ready has nothing to observe (its apiserver is not
  // asked) and comes back through its TenantControlPlane's watch event when Kamaji reports it;
  // the resync is the net. Polling it (every 5 s, then at the observe period) made a platform
  // starting thousands of tenants, or with thousands down, spend its CPU on clusters that could
  // not move: 1,667 per shard at 30 s kept k8-manager at 0.3 core doing 4 GETs each.
  const watched = r.controlPlaneReady === false;
  if (watched && r.migrationRequeueMs === undefined) return {};
  // The observe period is the net for a tenant apiserver that stops answering while its TCP still
  // says Ready: no watch reports that.
  const resync = r.kmsPluginReady || watched ? r.observePeriodMs : PENDING_RESYNC_MS;
  // The next migration step follows at once, but after a status write it waits for that write's
  // watch event: planning from the cache before it arrived would start from the old checkpoint
  // (and the next status write would conflict).
  const next = r.migrationRequeueMs === 0 && r.statusWritten ? resync : (r.migrationRequeueMs ?? resync);
  return { requeueAfterMs: Math.min(resync, next) };
}
