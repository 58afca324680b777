// kubectl kdc rewrap-etcd <cluster>: asks k8-manager to re-write every row of the cluster's
// configured resources under the current key_id now (annotation kube-dc.com/rewrap-requested),
// and with --wait follows it until a scan of the stored rows, newer than the request, shows none
// plaintext and none under an older key_id. k8-manager re-writes only after every control-plane
// replica runs the current config and publishes the same key_id; the proof is the scan.
import { ANNOTATIONS, KDC_CLUSTER_CONDITIONS, rfc3339, type KdcClusterStatus, type KubeObject } from '@kdc/shared';
import { bool, str, waitTimeoutSeconds, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import type { CommandContext } from '../context.ts';
import { failure } from '../errors.ts';
import { KUBE_FLAGS, getKdcCluster, kdcClusterRef, kubeAccess, kubeFailure } from '../clients/kube.ts';
import { progressBar } from '../terminal/progress.ts';

export const spec: CommandSpec = {
  name: 'rewrap-etcd',
  positionals: ['cluster'],
  summary:
    "Re-writes every stored row of the cluster's encrypted resources under the current key_id (after a KEK rotation; automatic unless spec.encryption.etcd.rewrapAfterRotation is false). With --wait, exits 0 once a scan of etcd newer than the request counts no plaintext and no older key_id, 1 on timeout.",
  flags: {
    ...KUBE_FLAGS,
    wait: { type: 'boolean', help: 'follow the re-write until a scan proves it complete' },
    timeout: {
      type: 'string',
      value: 'duration',
      help: 'with --wait: give up after this long, e.g. 30m, 2h (default 1h)',
    },
  },
};

const DEFAULT_TIMEOUT_SECONDS = 3600;
const POLL_MS = 2000;

type Cluster = KubeObject & { status?: KdcClusterStatus };

export type Progress = { done: true; line: string } | { done: false; line: string; rewritten?: number; total?: number };

/** Where a requested rewrap stands, from the cluster's status (pure). */
export function rewrapProgress(status: KdcClusterStatus | undefined, requestedAt: string): Progress {
  const e = status?.encryption;
  const m = e?.migration;
  if (m) {
    const percent = m.total > 0 ? Math.min(100, Math.floor((100 * m.rewritten) / m.total)) : 0;
    return {
      done: false,
      rewritten: m.rewritten,
      total: m.total,
      line: `${({ rewrap: 'rewrapping', enable: 'encrypting', decrypt: 'decrypting', switch: 'moving to the new key' } as const)[m.reason]}: ${m.rewritten}/${m.total} objects (${percent}%)${m.pass > 1 ? `, pass ${m.pass}` : ''}${m.resource ? `, ${m.resource}` : ', verifying'}`,
    };
  }
  const c = e?.coverage;
  if (c && Date.parse(c.scannedAt) >= Date.parse(requestedAt)) {
    if (c.plaintext === 0 && c.stale === 0)
      return { done: true, line: `done: all ${c.total} rows are under the current key_id (scanned ${c.scannedAt})` };
    return {
      done: false,
      line: `${c.stale + c.plaintext} of ${c.total} rows still to re-write (scanned ${c.scannedAt})`,
    };
  }
  const encrypted = status?.conditions?.find((x) => x.type === KDC_CLUSTER_CONDITIONS.encrypted);
  return { done: false, line: `waiting for k8-manager${encrypted ? `: ${encrypted.message}` : ''}` };
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const timeoutSeconds = waitTimeoutSeconds(args.flags, DEFAULT_TIMEOUT_SECONDS);
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const enabled =
    (cluster.spec as { encryption?: { etcd?: { enabled?: boolean } } } | undefined)?.encryption?.etcd?.enabled === true;
  if (!enabled)
    throw failure(`KdcCluster ${namespace}/${name} does not have etcd encryption enabled: there is nothing to re-wrap`);
  const requestedAt = rfc3339(ctx.now());
  try {
    await kube.patch(
      kdcClusterRef(namespace, name),
      { metadata: { annotations: { [ANNOTATIONS.rewrapRequested]: requestedAt } } },
      'merge',
    );
  } catch (error) {
    throw kubeFailure(`requesting the rewrap of ${namespace}/${name}`, error);
  }
  ctx.io.out(`rewrap of ${namespace}/${name} requested at ${requestedAt}\n`);
  if (!bool(args.flags, 'wait')) {
    ctx.io.out(
      `follow it with: kubectl kdc rewrap-etcd ${name} -n ${namespace} --wait (or kubectl kdc status ${name} -n ${namespace})\n`,
    );
    return 0;
  }
  const deadline = ctx.now().getTime() + timeoutSeconds * 1000;
  const bar = progressBar(ctx.io);
  for (;;) {
    const progress = rewrapProgress(((await getKdcCluster(kube, namespace, name)) as Cluster).status, requestedAt);
    if (progress.done) {
      bar.end();
      ctx.io.out(`${progress.line}\n`);
      return 0;
    }
    bar.update(progress.rewritten, progress.total, progress.line);
    if (ctx.now().getTime() > deadline) {
      bar.end();
      ctx.io.err(
        `error: the rewrap of ${namespace}/${name} did not finish within ${str(args.flags, 'timeout') ?? '1h'}; it goes on: run the command again with --wait to follow it\n`,
      );
      return 1;
    }
    await ctx.sleep(POLL_MS);
  }
}
