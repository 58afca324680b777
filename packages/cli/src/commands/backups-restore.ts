// kubectl kdc backups restore <cluster> <key|latest>: checks the backup, then asks k8-manager to
// restore it (annotation kube-dc.com/restore-from); --wait follows the run k8-manager records in
// status.restore (shown in kube-dc.com/restore-state).
import { latestCandidates, listBackups, parseBackupKey, type Inventory } from '@kdc/backup-envelope';
import {
  ANNOTATIONS,
  KDC_CLUSTER_CONDITIONS,
  RESTORE_STATES,
  isConflict,
  isRestoreFinished,
  restoreRun,
  type Condition,
  type KdcClusterStatus,
  type KubeObject,
} from '@kdc/shared';
import { bool, waitTimeoutSeconds, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import { S3_FLAGS, clusterBackups } from '../clients/backup-access.ts';
import type { CommandContext } from '../context.ts';
import { progressBar } from '../terminal/progress.ts';
import { describe, failure, usageError } from '../errors.ts';
import { isoSeconds } from '../terminal/format.ts';
import { KUBE_FLAGS, getKdcCluster, kdcClusterRef, kubeAccess, kubeFailure } from '../clients/kube.ts';

export const spec: CommandSpec = {
  name: 'backups restore',
  positionals: ['cluster', 'key'],
  summary:
    'Restores the cluster\'s etcd from a backup: <key> as printed by "kubectl kdc backups list" (<cluster>/<cluster>-<timestamp>/ or .db), or "latest" (the newest envelope backup; never a plaintext .db). Checks the backup is complete and belongs to this cluster, then sets the kube-dc.com/restore-from annotation; k8-manager runs the restore.',
  flags: {
    ...KUBE_FLAGS,
    ...S3_FLAGS,
    'confirm-unauthenticated': {
      type: 'boolean',
      help: 'restore a plaintext <cluster>-<timestamp>.db: nothing authenticates one (anyone who can write to the bucket could have put it there); only for a file you know the origin of',
    },
    wait: { type: 'boolean', help: 'follow kube-dc.com/restore-state until Succeeded (exit 0) or Failed (exit 1)' },
    timeout: {
      type: 'string',
      value: 'duration',
      help: 'with --wait: give up after this long, e.g. 30m, 1h (default 30m)',
    },
  },
};

export const DEFAULT_TIMEOUT_SECONDS = 30 * 60;
export const POLL_MS = 2000;

/** Accepts `s3://<bucket>/<key>` and a missing trailing slash; pure. */
export function normaliseBackupKey(input: string, bucket: string): string {
  let key = input.trim();
  const url = `s3://${bucket}/`;
  if (key.startsWith(url)) key = key.slice(url.length);
  key = key.replace(/^\/+/, '');
  if (!key.endsWith('/') && !key.endsWith('.db')) key += '/';
  return key;
}

export type Choice = { ok: true; key: string } | { ok: false; code: 1 | 2; message: string };

/**
 * Which backup `requested` names, checked against the inventory of `cluster`; pure. "latest" is
 * the newest schemaVersion 2 envelope as the server's times order them (the restore Job checks its
 * data key before it writes anything); a plaintext file only when named and confirmed.
 */
export function chooseBackup(
  requested: string,
  cluster: string,
  bucket: string,
  inventory: Inventory,
  options: { confirmUnauthenticated?: boolean } = {},
): Choice {
  const list = `run "kubectl kdc backups list ${cluster}" for the backups there are`;
  if (requested === 'latest') {
    const newest = latestCandidates(inventory.backups)[0];
    return newest
      ? { ok: true, key: newest.key }
      : {
          ok: false,
          code: 1,
          message: `cluster ${cluster} has no complete envelope backup in s3://${bucket}/${cluster}/ to restore as "latest"; name a backup instead (${list})`,
        };
  }
  const key = normaliseBackupKey(requested, bucket);
  const parsed = parseBackupKey(key);
  if (!parsed) {
    return {
      ok: false,
      code: 2,
      message: `"${requested}" is not a backup key: write <cluster>/<cluster>-<timestamp>/ (envelope) or <cluster>/<cluster>-<timestamp>.db (plaintext), or "latest"; ${list}`,
    };
  }
  if (parsed.cluster !== cluster)
    return {
      ok: false,
      code: 1,
      message: `backup ${key} belongs to cluster ${parsed.cluster}, not ${cluster}: a cluster is only restored from its own backups`,
    };
  if (inventory.incomplete.includes(key))
    return {
      ok: false,
      code: 1,
      message: `backup ${key} is incomplete (no metadata.json: its upload failed or is still running) and cannot be restored; ${list}`,
    };
  const invalid = inventory.invalid.find((i) => i.key === key);
  if (invalid) return { ok: false, code: 1, message: `backup ${key} cannot be restored: ${invalid.error}` };
  if (!inventory.backups.some((b) => b.key === key))
    return { ok: false, code: 1, message: `backup ${key} does not exist in s3://${bucket}/; ${list}` };
  if (parsed.kind === 'plaintext' && !options.confirmUnauthenticated) {
    return {
      ok: false,
      code: 1,
      message: `backup ${key} is a plaintext snapshot: nothing authenticates it, and anyone who can write to s3://${bucket}/ could have put it there. If you know where it came from, run again with --confirm-unauthenticated`,
    };
  }
  return { ok: true, key };
}

type Cluster = KubeObject & { status?: KdcClusterStatus };

/** The state of the run the cluster is in (status.restore), undefined until k8-manager took the request up; pure. */
export function restoreStateOf(cluster: Cluster): string | undefined {
  const run = restoreRun(cluster.metadata?.annotations, cluster.status);
  return run && !run.fresh ? run.state : undefined;
}

/** Why a new restore must not start now (null = it may); pure. */
export function restoreBlocker(cluster: Cluster, name: string, namespace: string): string | null {
  const run = restoreRun(cluster.metadata?.annotations, cluster.status);
  if (!run) return null;
  if (!run.fresh && !isRestoreFinished(run.state)) {
    return `a restore from ${run.key} is already running on ${namespace}/${name} (${run.state}): wait for it to reach Succeeded or Failed`;
  }
  if (run.fresh) {
    return `a restore from ${run.key} was requested on ${namespace}/${name} and has not started: wait for k8-manager, or if the request is stale remove it with "kubectl annotate kdc-cl ${name} -n ${namespace} ${ANNOTATIONS.restoreFrom}-"`;
  }
  return null;
}

/**
 * The merge patch that requests the restore: a finished run's shown state goes with it (so the
 * same key runs again), and the confirmation of a plaintext file is set for this key or dropped.
 */
export function restorePatch(
  key: string,
  resourceVersion: string | undefined,
  annotations: Record<string, string> | undefined,
  confirmUnauthenticated = false,
) {
  const confirmation = confirmUnauthenticated
    ? { [ANNOTATIONS.restoreUnauthenticatedConfirmed]: key }
    : annotations?.[ANNOTATIONS.restoreUnauthenticatedConfirmed] !== undefined
      ? { [ANNOTATIONS.restoreUnauthenticatedConfirmed]: null }
      : {};
  return {
    metadata: {
      ...(resourceVersion ? { resourceVersion } : {}),
      annotations: {
        [ANNOTATIONS.restoreFrom]: key,
        ...(annotations?.[ANNOTATIONS.restoreState] !== undefined ? { [ANNOTATIONS.restoreState]: null } : {}),
        ...confirmation,
      },
    },
  };
}

const conditionOf = (cluster: KubeObject, type: string) =>
  ((cluster.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const timeoutSeconds = waitTimeoutSeconds(args.flags, DEFAULT_TIMEOUT_SECONDS);
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const annotations = cluster.metadata?.annotations;
  const blocker = restoreBlocker(cluster, name, namespace);
  if (blocker) throw failure(blocker);
  const confirm = bool(args.flags, 'confirm-unauthenticated');

  const { store, settings } = await clusterBackups(kube, namespace, cluster, args.flags, ctx.env);
  let inventory: Inventory;
  try {
    inventory = await listBackups(store, name);
  } catch (error) {
    throw failure(`listing ${settings.destinationPath}: ${describe(error)}`);
  } finally {
    store.destroy();
  }
  const choice = chooseBackup(args.positionals.key!, name, settings.bucket, inventory, {
    confirmUnauthenticated: confirm,
  });
  if (!choice.ok) throw choice.code === 2 ? usageError(choice.message) : failure(choice.message);

  try {
    await kube.patch(
      kdcClusterRef(namespace, name),
      restorePatch(choice.key, cluster.metadata?.resourceVersion, annotations, confirm && choice.key.endsWith('.db')),
      'merge',
    );
  } catch (error) {
    if (isConflict(error))
      throw failure(`KdcCluster ${namespace}/${name} changed while the backup was checked: run the command again`);
    throw kubeFailure(`setting ${ANNOTATIONS.restoreFrom} on KdcCluster ${namespace}/${name}`, error);
  }
  ctx.io.out(
    `restore of ${namespace}/${name} from s3://${settings.bucket}/${choice.key} requested (${ANNOTATIONS.restoreFrom}); k8-manager runs it\n`,
  );
  if (!bool(args.flags, 'wait')) {
    ctx.io.out(
      `follow it with: kubectl get kdc-cl ${name} -n ${namespace} -o jsonpath='{.status.restore.state}' (or pass --wait next time)\n`,
    );
    return 0;
  }
  return waitForRestore(ctx, () => getKdcCluster(kube, namespace, name), name, namespace, timeoutSeconds);
}

/** Polls the cluster until restore-state is final or the timeout passes; exit code. */
export async function waitForRestore(
  ctx: CommandContext,
  read: () => Promise<KubeObject>,
  name: string,
  namespace: string,
  timeoutSeconds: number,
): Promise<number> {
  const deadline = ctx.now().getTime() + timeoutSeconds * 1000;
  // null: nothing printed yet, so the first state (also "not started") is shown.
  let last: string | undefined | null = null;
  // On a terminal the states also draw a bar: the run's place among the states a restore goes through.
  const bar = ctx.io.tty ? progressBar(ctx.io) : undefined;
  for (;;) {
    let cluster: KubeObject;
    try {
      cluster = await read();
    } catch (error) {
      // A transient API error while waiting is not the restore failing.
      if (ctx.now().getTime() > deadline) throw error;
      ctx.io.err(`warning: ${describe(error)}; retrying\n`);
      await ctx.sleep(POLL_MS);
      continue;
    }
    const state = restoreStateOf(cluster);
    if (state !== last) {
      const known = state === undefined || (RESTORE_STATES as readonly string[]).includes(state);
      const line = `${isoSeconds(ctx.now())}  restore-state: ${state ?? '(not started)'}${known ? '' : ' (unknown state)'}`;
      if (bar)
        bar.update(
          state && state !== 'Failed'
            ? RESTORE_STATES.indexOf(state as (typeof RESTORE_STATES)[number]) + 1
            : undefined,
          RESTORE_STATES.length - 1,
          line,
        );
      else ctx.io.out(`${line}\n`);
      last = state;
    }
    if (isRestoreFinished(state) || ctx.now().getTime() >= deadline) bar?.end();
    if (state === 'Succeeded') {
      const status = cluster.status as { latestRestoreKey?: string; latestRestoreTime?: string } | undefined;
      ctx.io.out(
        `restore succeeded${status?.latestRestoreKey ? `: ${status.latestRestoreKey}` : ''}${status?.latestRestoreTime ? ` at ${status.latestRestoreTime}` : ''}\n`,
      );
      return 0;
    }
    if (state === 'Failed') {
      const condition = conditionOf(cluster, KDC_CLUSTER_CONDITIONS.restoreReady);
      ctx.io.err(
        `restore failed${condition ? `: ${condition.reason}: ${condition.message}` : ' (no RestoreReady condition message)'}\n`,
      );
      return 1;
    }
    if (ctx.now().getTime() >= deadline) {
      ctx.io.err(
        `gave up waiting after ${timeoutSeconds}s; restore-state is ${state ?? '(not started)'} and the restore goes on: follow it with kubectl get kdc-cl ${name} -n ${namespace}\n`,
      );
      return 1;
    }
    await ctx.sleep(POLL_MS);
  }
}
