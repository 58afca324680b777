// kubectl kdc backups restore <cluster> <key|latest>: checks the backup, then asks k8-manager to
// restore it (annotation kube-dc.com/restore-from); --wait follows kube-dc.com/restore-state.
import { listBackups, parseBackupKey, type Inventory } from '@kdc/backup-envelope';
import { ANNOTATIONS, KDC_CLUSTER_CONDITIONS, RESTORE_STATES, isConflict, parseDuration, type Condition, type KubeObject } from '@kdc/shared';
import { bool, str, type CommandSpec, type ParsedArgs } from './args.ts';
import { S3_FLAGS, clusterBackups } from './backup-access.ts';
import type { CommandContext } from './context.ts';
import { describe, failure, usageError } from './errors.ts';
import { isoSeconds } from './format.ts';
import { KUBE_FLAGS, getKdcCluster, kdcClusterRef, kubeAccess, kubeFailure } from './kube.ts';

export const spec: CommandSpec = {
  name: 'backups restore',
  positionals: ['cluster', 'key'],
  summary: 'Restores the cluster\'s etcd from a backup: <key> as printed by "kubectl kdc backups list" (<cluster>/<cluster>-<timestamp>/ or .db), or "latest". Checks the backup is complete and belongs to this cluster, then sets the kube-dc.com/restore-from annotation; k8-manager runs the restore.',
  flags: {
    ...KUBE_FLAGS,
    ...S3_FLAGS,
    wait: { type: 'boolean', help: 'follow kube-dc.com/restore-state until Succeeded (exit 0) or Failed (exit 1)' },
    timeout: { type: 'string', value: 'duration', help: 'with --wait: give up after this long, e.g. 30m, 1h (default 30m)' },
  },
};

const FINAL_STATES = new Set<string>(['Succeeded', 'Failed']);
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

/** Which backup `requested` names, checked against the inventory of `cluster`; pure. */
export function chooseBackup(requested: string, cluster: string, bucket: string, inventory: Inventory): Choice {
  const list = `run "kubectl kdc backups list ${cluster}" for the backups there are`;
  if (requested === 'latest') {
    const newest = inventory.backups.at(-1);
    return newest ? { ok: true, key: newest.key } : { ok: false, code: 1, message: `cluster ${cluster} has no complete backup in s3://${bucket}/${cluster}/ to restore` };
  }
  const key = normaliseBackupKey(requested, bucket);
  const parsed = parseBackupKey(key);
  if (!parsed) {
    return { ok: false, code: 2, message: `"${requested}" is not a backup key: write <cluster>/<cluster>-<timestamp>/ (envelope) or <cluster>/<cluster>-<timestamp>.db (plaintext), or "latest"; ${list}` };
  }
  if (parsed.cluster !== cluster) return { ok: false, code: 1, message: `backup ${key} belongs to cluster ${parsed.cluster}, not ${cluster}: a cluster is only restored from its own backups` };
  if (inventory.incomplete.includes(key)) return { ok: false, code: 1, message: `backup ${key} is incomplete (no metadata.json: its upload failed or is still running) and cannot be restored; ${list}` };
  const invalid = inventory.invalid.find((i) => i.key === key);
  if (invalid) return { ok: false, code: 1, message: `backup ${key} cannot be restored: ${invalid.error}` };
  if (!inventory.backups.some((b) => b.key === key)) return { ok: false, code: 1, message: `backup ${key} does not exist in s3://${bucket}/; ${list}` };
  return { ok: true, key };
}

/** Why a new restore must not start now (null = it may); pure. */
export function restoreBlocker(annotations: Record<string, string> | undefined, cluster: string, namespace: string): string | null {
  const state = annotations?.[ANNOTATIONS.restoreState];
  const from = annotations?.[ANNOTATIONS.restoreFrom];
  if (state !== undefined && !FINAL_STATES.has(state)) {
    return `a restore${from ? ` from ${from}` : ''} is already running on ${namespace}/${cluster} (${ANNOTATIONS.restoreState}: ${state}): wait for it to reach Succeeded or Failed`;
  }
  if (state === undefined && from) {
    return `a restore from ${from} was requested on ${namespace}/${cluster} and has not started (no ${ANNOTATIONS.restoreState} yet): wait for k8-manager, or if the request is stale remove it with "kubectl annotate kdc-cl ${cluster} -n ${namespace} ${ANNOTATIONS.restoreFrom}-"`;
  }
  return null;
}

/** The merge patch that requests the restore; a finished run's state goes with it. */
export function restorePatch(key: string, resourceVersion: string | undefined, annotations: Record<string, string> | undefined) {
  return {
    metadata: {
      ...(resourceVersion ? { resourceVersion } : {}),
      annotations: { [ANNOTATIONS.restoreFrom]: key, ...(annotations?.[ANNOTATIONS.restoreState] !== undefined ? { [ANNOTATIONS.restoreState]: null } : {}) },
    },
  };
}

const conditionOf = (cluster: KubeObject, type: string) =>
  ((cluster.status as { conditions?: Condition[] } | undefined)?.conditions ?? []).find((c) => c.type === type);

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const timeoutText = str(args.flags, 'timeout');
  let timeoutSeconds = DEFAULT_TIMEOUT_SECONDS;
  if (timeoutText !== undefined) {
    const parsed = parseDuration(timeoutText);
    if (!parsed.ok || parsed.seconds <= 0) throw usageError(`--timeout "${timeoutText}": ${parsed.ok ? 'must be more than 0' : parsed.error}`);
    if (!bool(args.flags, 'wait')) throw usageError('--timeout only applies with --wait');
    timeoutSeconds = parsed.seconds;
  }
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const annotations = cluster.metadata?.annotations;
  const blocker = restoreBlocker(annotations, name, namespace);
  if (blocker) throw failure(blocker);

  const { store, settings } = await clusterBackups(kube, namespace, cluster, args.flags, ctx.env);
  let inventory: Inventory;
  try {
    inventory = await listBackups(store, name);
  } catch (error) {
    throw failure(`listing ${settings.destinationPath}: ${describe(error)}`);
  } finally {
    store.destroy();
  }
  const choice = chooseBackup(args.positionals.key!, name, settings.bucket, inventory);
  if (!choice.ok) throw choice.code === 2 ? usageError(choice.message) : failure(choice.message);

  try {
    await kube.patch(kdcClusterRef(namespace, name), restorePatch(choice.key, cluster.metadata?.resourceVersion, annotations), 'merge');
  } catch (error) {
    if (isConflict(error)) throw failure(`KdcCluster ${namespace}/${name} changed while the backup was checked: run the command again`);
    throw kubeFailure(`setting ${ANNOTATIONS.restoreFrom} on KdcCluster ${namespace}/${name}`, error);
  }
  ctx.io.out(`restore of ${namespace}/${name} from s3://${settings.bucket}/${choice.key} requested (${ANNOTATIONS.restoreFrom}); k8-manager runs it\n`);
  if (!bool(args.flags, 'wait')) {
    ctx.io.out(`follow it with: kubectl get kdc-cl ${name} -n ${namespace} -o jsonpath='{.metadata.annotations.kube-dc\\.com/restore-state}' (or pass --wait next time)\n`);
    return 0;
  }
  return waitForRestore(ctx, () => getKdcCluster(kube, namespace, name), name, namespace, timeoutSeconds);
}

/** Polls the cluster until restore-state is final or the timeout passes; exit code. */
export async function waitForRestore(ctx: CommandContext, read: () => Promise<KubeObject>, name: string, namespace: string, timeoutSeconds: number): Promise<number> {
  const deadline = ctx.now().getTime() + timeoutSeconds * 1000;
  // null: nothing printed yet, so the first state (also "not started") is shown.
  let last: string | undefined | null = null;
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
    const state = cluster.metadata?.annotations?.[ANNOTATIONS.restoreState];
    if (state !== last) {
      const known = state === undefined || (RESTORE_STATES as readonly string[]).includes(state);
      ctx.io.out(`${isoSeconds(ctx.now())}  restore-state: ${state ?? '(not started)'}${known ? '' : ' (unknown state)'}\n`);
      last = state;
    }
    if (state === 'Succeeded') {
      const status = cluster.status as { latestRestoreKey?: string; latestRestoreTime?: string } | undefined;
      ctx.io.out(`restore succeeded${status?.latestRestoreKey ? `: ${status.latestRestoreKey}` : ''}${status?.latestRestoreTime ? ` at ${status.latestRestoreTime}` : ''}\n`);
      return 0;
    }
    if (state === 'Failed') {
      const condition = conditionOf(cluster, KDC_CLUSTER_CONDITIONS.restoreReady);
      ctx.io.err(`restore failed${condition ? `: ${condition.reason}: ${condition.message}` : ' (no RestoreReady condition message)'}\n`);
      return 1;
    }
    if (ctx.now().getTime() >= deadline) {
      ctx.io.err(`gave up waiting after ${timeoutSeconds}s; restore-state is ${state ?? '(not started)'} and the restore goes on: follow it with kubectl get kdc-cl ${name} -n ${namespace}\n`);
      return 1;
    }
    await ctx.sleep(POLL_MS);
  }
}
