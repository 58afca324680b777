// kubectl kdc status <cluster>: what an operator asks first — is it encrypted, with which key and
// version, are backups and restores healthy, and what does each condition say.
import { ANNOTATIONS, type KubeObject } from '@kdc/shared';
import type { CommandSpec, ParsedArgs } from '../terminal/args.ts';
import type { CommandContext } from '../context.ts';
import { table } from '../terminal/format.ts';
import { KUBE_FLAGS, getKdcCluster, kubeAccess } from '../clients/kube.ts';
import { OUTPUT_FLAG, outputFormat, render } from '../terminal/output.ts';

export const spec: CommandSpec = {
  name: 'status',
  positionals: ['cluster'],
  summary:
    "Shows the cluster's encryption (key, KEK version, rotation), backups, restores and every condition with its reason and message.",
  flags: {
    ...KUBE_FLAGS,
    ...OUTPUT_FLAG,
    json: { type: 'boolean', help: 'the same as -o json (kept from earlier releases)' },
  },
};

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
interface ClusterStatus {
  phase?: string;
  conditions?: Condition[];
  encryption?: {
    resolvedKeyRef?: string;
    resolvedBackupKeyRef?: string;
    currentKeyVersion?: number;
    kmsPluginReady?: boolean;
    kekRotation?: {
      enabled?: boolean;
      currentVersion?: number;
      lastRotatedTime?: string;
      nextRotationTime?: string;
      minDecryptionVersion?: number;
    };
  };
  backupDestinationPath?: string;
  latestBackupKey?: string;
  latestBackupTime?: string;
  latestRestoreKey?: string;
  latestRestoreTime?: string;
}

/** The status a person reads, as lines (pure). Nothing secret is in a KdcCluster's status. */
export function renderStatus(cluster: KubeObject & { status?: ClusterStatus }): string {
  const s = cluster.status ?? {};
  const e = s.encryption;
  const r = e?.kekRotation;
  const annotations = cluster.metadata?.annotations ?? {};
  const restoreFrom = annotations[ANNOTATIONS.restoreFrom];
  const lines = [
    `Cluster:     ${cluster.metadata?.namespace}/${cluster.metadata?.name}`,
    `Phase:       ${s.phase ?? '(not reconciled yet)'}`,
    `Encryption:  ${e ? `key ${e.resolvedKeyRef ?? '-'}, KEK version ${e.currentKeyVersion ?? '-'} in use, plugin ${e.kmsPluginReady ? 'ready' : 'not ready'}` : 'off'}`,
    ...(r
      ? [
          `Rotation:    ${r.enabled ? 'on' : 'off'}; Transit version ${r.currentVersion ?? '-'}${r.lastRotatedTime ? `, last ${r.lastRotatedTime}` : ''}${r.nextRotationTime ? `, next ${r.nextRotationTime}` : ''}; min_decryption_version ${r.minDecryptionVersion ?? '-'}`,
        ]
      : []),
    `Backups:     ${s.backupDestinationPath ?? '-'}${s.latestBackupKey ? `; latest ${s.latestBackupKey} at ${s.latestBackupTime}` : '; none yet'}${e?.resolvedBackupKeyRef ? ` (key ${e.resolvedBackupKeyRef})` : ''}`,
    ...(restoreFrom
      ? [`Restore:     from ${restoreFrom}: ${annotations[ANNOTATIONS.restoreState] ?? 'requested'}`]
      : []),
    ...(s.latestRestoreKey ? [`Restored:    ${s.latestRestoreKey} at ${s.latestRestoreTime}`] : []),
    '',
  ];
  const conditions = s.conditions ?? [];
  const rows = conditions.map((c) => [c.type, c.status, c.reason ?? '', c.message ?? '']);
  return `${lines.join('\n')}\n${rows.length ? table(['CONDITION', 'STATUS', 'REASON', 'MESSAGE'], rows) : 'No conditions yet.\n'}`;
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const cluster = (await getKdcCluster(kube, namespace, args.positionals.cluster!)) as KubeObject & {
    status?: ClusterStatus;
  };
  const document = {
    name: cluster.metadata?.name,
    namespace: cluster.metadata?.namespace,
    status: cluster.status ?? {},
  };
  ctx.io.out(
    render(outputFormat(args.flags), {
      document,
      names: [`kdccluster/${cluster.metadata?.name}`],
      table: () => renderStatus(cluster),
    }),
  );
  const ready = cluster.status?.conditions?.find((c) => c.type === 'Ready');
  return ready?.status === 'True' ? 0 : 1;
}
