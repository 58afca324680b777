// kubectl kdc backups rewrap <cluster>: re-wrap every backup's data key to the latest version
// of the cluster's backup Transit key (the data never moves; see @kdc/backup-envelope rewrap).
import { rewrapBackups, type RewrapOutcome, type RewrapResult } from '@kdc/backup-envelope';
import { kmsKeyTransitName, resolveKeyRefs, type KubeObject } from '@kdc/shared';
import { bool, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import { S3_FLAGS, clusterBackups, clusterSpec } from '../clients/backup-access.ts';
import type { CommandContext } from '../context.ts';
import { describe, failure } from '../errors.ts';
import { plural } from '../terminal/format.ts';
import { KUBE_FLAGS, getKdcCluster, kmsKeyRef, kubeAccess } from '../clients/kube.ts';
import { OPENBAO_FLAGS, openBaoFor, openBaoSettings } from '../clients/openbao.ts';

export const spec: CommandSpec = {
  name: 'backups rewrap',
  positionals: ['cluster'],
  summary:
    "Re-wraps every backup's data key to the latest version of the cluster's backup Transit key (KMSKey spec.encryption.etcd.backup.keyRef, default the etcd key). Run it after a KEK rotation and before advancing min_decryption_version.",
  flags: {
    ...KUBE_FLAGS,
    ...S3_FLAGS,
    ...OPENBAO_FLAGS,
    'dry-run': { type: 'boolean', help: 'only report what would be re-wrapped' },
  },
};

export function outcomeLine(o: RewrapOutcome): string {
  switch (o.status) {
    case 'rewrapped':
      return `rewrapped     ${o.key}  v${o.from} -> v${o.to}\n`;
    case 'would-rewrap':
      return `would rewrap  ${o.key}  v${o.from} -> v${o.to}\n`;
    case 'current':
      return `current       ${o.key}  v${o.from}\n`;
    case 'failed':
      return `FAILED        ${o.key}: ${o.error ?? 'unknown error'}\n`;
  }
}

export function summaryLine(result: RewrapResult, transitKey: string, dryRun: boolean): string {
  const count = (s: RewrapOutcome['status']) => result.outcomes.filter((o) => o.status === s).length;
  const latest = result.latestVersion[transitKey];
  const parts = dryRun ? [`${count('would-rewrap')} would be rewrapped`] : [`${count('rewrapped')} rewrapped`];
  parts.push(`${count('current')} current`, `${result.failed} failed`);
  return `${plural(result.outcomes.length, 'backup')} of transit key ${transitKey}${latest !== undefined ? ` (latest v${latest})` : ''}: ${parts.join(', ')}\n`;
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const bao = openBaoSettings(args.flags, ctx.env);
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const kmsKey = resolveKeyRefs(name, clusterSpec(cluster)).backup;
  const keyObject = await kube.getOrNull<KubeObject>(kmsKeyRef(namespace, kmsKey));
  const transitKey = kmsKeyTransitName(namespace, kmsKey, (keyObject?.status as { keyId?: string } | undefined)?.keyId);
  const { client, namespaceLabel } = await openBaoFor(kube, namespace, bao);
  const { store, settings } = await clusterBackups(kube, namespace, cluster, args.flags, ctx.env);
  const dryRun = bool(args.flags, 'dry-run');
  try {
    ctx.io.out(
      `${dryRun ? 'dry run: ' : ''}re-wrapping backups in ${settings.destinationPath} to the latest version of transit key ${transitKey} (KMSKey ${kmsKey}, ${namespaceLabel})\n`,
    );
    let result: RewrapResult;
    try {
      result = await rewrapBackups({ store, transit: client.transit(), cluster: name, transitKey, dryRun });
    } catch (error) {
      throw failure(`rewrap of ${settings.destinationPath}: ${describe(error)}`);
    }
    for (const o of result.outcomes) ctx.io.out(outcomeLine(o));
    ctx.io.out(summaryLine(result, transitKey, dryRun));
    if (result.failed > 0) {
      ctx.io.err(
        `${plural(result.failed, 'backup')} not rewrapped: fix the cause above and run "kubectl kdc backups rewrap ${name} -n ${namespace}" again (their old wrapped keys still restore until min_decryption_version moves)\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    store.destroy();
  }
}
