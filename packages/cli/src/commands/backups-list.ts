// kubectl kdc backups list <cluster>: what is in the cluster's bucket, which Transit key
// version each backup needs, what is broken, and which backups were taken before the last
// migration re-wrote the rows (they still hold the old bytes: docs/runbook.md, Scrub).
import {
  backupTime,
  latestCandidates,
  listBackups,
  minKeyVersion,
  type BackupInfo,
  type Inventory,
} from '@kdc/backup-envelope';
import type { KdcClusterStatus } from '@kdc/shared';
import type { CommandSpec, ParsedArgs } from '../terminal/args.ts';
import { S3_FLAGS, clusterBackups } from '../clients/backup-access.ts';
import type { CommandContext } from '../context.ts';
import { describe, failure } from '../errors.ts';
import { humanSize, isoSeconds, plural, table } from '../terminal/format.ts';
import { KUBE_FLAGS, getKdcCluster, kubeAccess } from '../clients/kube.ts';
import { OUTPUT_FLAG, outputFormat, render } from '../terminal/output.ts';

export const spec: CommandSpec = {
  name: 'backups list',
  positionals: ['cluster'],
  summary:
    "Lists the cluster's etcd backups in its bucket: key, creation time, Transit key and version, size; incomplete and invalid backups; the lowest Transit key version the backups still need; PRE-MIGRATION on backups taken before the last re-write of the rows finished (they hold plaintext or an older key_id).",
  flags: {
    ...KUBE_FLAGS,
    ...S3_FLAGS,
    ...OUTPUT_FLAG,
    json: { type: 'boolean', help: 'the same as -o json (kept from earlier releases)' },
  },
};

/** What may be shown of a backup: never the wrapped key or any other ciphertext. */
export function publicBackup(b: BackupInfo) {
  return {
    key: b.key,
    kind: b.kind,
    createdAt: b.createdAt.toISOString(),
    ...(b.schemaVersion !== undefined ? { schemaVersion: b.schemaVersion } : {}),
    ...(b.algorithm ? { algorithm: b.algorithm } : {}),
    ...(b.transitKey ? { transitKey: b.transitKey } : {}),
    ...(b.transitKeyVersion !== undefined ? { transitKeyVersion: b.transitKeyVersion } : {}),
    ...(b.storedSize !== undefined ? { storedSize: b.storedSize } : {}),
    ...(b.plaintextSize !== undefined ? { plaintextSize: b.plaintextSize } : {}),
  };
}

/** Lowest version still needed, per Transit key found among the backups. */
export function lowestVersions(backups: readonly BackupInfo[]): Record<string, number> {
  const keys = [
    ...new Set(backups.filter((b) => b.kind === 'envelope' && b.transitKey).map((b) => b.transitKey!)),
  ].sort();
  return Object.fromEntries(keys.map((k) => [k, minKeyVersion(backups, k)!]));
}

export const SCRUB_DOC = 'docs/runbook.md#scrub-after-a-migration';
/** What a backup taken before a running migration of each kind still holds. */
const HOLDS = {
  enable: 'rows in plaintext',
  rewrap: 'rows under an older key_id',
  switch: 'rows under the key the switch leaves',
} as const;

/** What the cluster's status says about migrations (re-writes of every row), as backups are judged by it. */
export interface MigrationHistory {
  /** status.encryption.lastRewrapCompleted: when a scan last proved a migration (enable or rewrap) complete. */
  lastCompleted?: Date;
  /** status.encryption.migration: a migration that has not been proven complete yet. */
  running?: { reason: 'enable' | 'rewrap' | 'switch'; startedAt: Date };
}

const parseTime = (value: unknown): Date | undefined => {
  if (typeof value !== 'string') return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
};

/** Reads the history from a KdcCluster's status (pure); what is missing or unreadable is left out. */
export function migrationHistory(status: Pick<KdcClusterStatus, 'encryption'> | undefined): MigrationHistory {
  const e = status?.encryption;
  const lastCompleted = parseTime(e?.lastRewrapCompleted);
  const startedAt = parseTime(e?.migration?.startedAt);
  const reason = e?.migration?.reason;
  return {
    ...(lastCompleted ? { lastCompleted } : {}),
    ...(startedAt && (reason === 'enable' || reason === 'rewrap' || reason === 'switch')
      ? { running: { reason, startedAt } }
      : {}),
  };
}

export interface PreMigration {
  flag: 'PRE-MIGRATION';
  /** Before a migration that completed, or before/while one that still runs. */
  migration: 'completed' | 'running';
  /** lastRewrapCompleted, or the running migration's startedAt. */
  time: string;
  reason?: 'enable' | 'rewrap' | 'switch';
  note: string;
}

/**
 * Whether a backup still holds what a migration re-wrote (pure): taken before the last completed
 * migration, or at any time before a running one finishes. The backup's time is the one a bucket
 * writer cannot move later (backupTime); it is stamped before the snapshot is read, and
 * lastRewrapCompleted has whole seconds, so a backup within that second counts as before.
 */
export function preMigration(
  backup: Pick<BackupInfo, 'createdAt' | 'storedAt'>,
  history: MigrationHistory,
): PreMigration | undefined {
  const taken = backupTime(backup).getTime();
  const running = history.running;
  if (running) {
    const since = isoSeconds(running.startedAt);
    const holds = HOLDS[running.reason];
    const when =
      taken >= running.startedAt.getTime()
        ? `taken while the rows were being re-written (${running.reason}, running since ${since})`
        : `taken before the rows were re-written (${running.reason}, running since ${since})`;
    return {
      flag: 'PRE-MIGRATION',
      migration: 'running',
      time: since,
      reason: running.reason,
      note: `${when}: it holds ${holds}; delete it once a backup taken after the re-write completed exists (${SCRUB_DOC})`,
    };
  }
  const done = history.lastCompleted;
  if (done && taken < done.getTime() + 1000) {
    const at = isoSeconds(done);
    return {
      flag: 'PRE-MIGRATION',
      migration: 'completed',
      time: at,
      note: `taken before the rows were re-written on ${at}: it holds plaintext or rows under an older key_id; delete it once newer backups exist (${SCRUB_DOC})`,
    };
  }
  return undefined;
}

/** One line on the flagged backups, or nothing (pure). */
export function preMigrationSummary(backups: readonly BackupInfo[], history: MigrationHistory): string {
  const flagged = backups.filter((b) => preMigration(b, history));
  if (!flagged.length) return '';
  const one = flagged.length === 1;
  const marked = `${one ? 'the backup' : `the ${flagged.length} backups`} marked PRE-MIGRATION`;
  const them = one ? 'it' : 'them';
  if (history.running) {
    const { reason, startedAt } = history.running;
    return `note: rows are being re-written (${reason}, since ${isoSeconds(startedAt)}): ${marked} ${one ? 'holds' : 'hold'} ${HOLDS[reason]}; delete ${them} once the re-write completed and a newer backup exists (${SCRUB_DOC})\n`;
  }
  const newer = latestCandidates(backups.filter((b) => !preMigration(b, history)))[0];
  const what = `${marked} ${one ? 'was' : 'were'} taken before the rows were re-written on ${isoSeconds(history.lastCompleted!)} and ${one ? 'holds' : 'hold'} plaintext or rows under an older key_id`;
  return newer
    ? `note: ${what}; ${newer.key} is newer: delete ${them} (${SCRUB_DOC})\n`
    : `note: ${what}; delete ${them} once a newer backup exists (${SCRUB_DOC})\n`;
}

export function renderInventory(destination: string, inventory: Inventory, history: MigrationHistory = {}): string {
  const { backups, incomplete, invalid } = inventory;
  const flags = backups.map((b) => preMigration(b, history));
  // The column only when a backup is flagged: a cluster that never migrated keeps the five columns.
  const flagged = flags.some(Boolean);
  let out = '';
  if (backups.length === 0) {
    out += `no backups in ${destination}\n`;
  } else {
    out += table(
      ['KEY', 'CREATED', 'TRANSIT KEY', 'VERSION', 'SIZE', ...(flagged ? ['MIGRATION'] : [])],
      backups.map((b, i) => [
        b.key,
        isoSeconds(b.createdAt),
        b.kind === 'plaintext' ? '(plaintext)' : (b.transitKey ?? '-'),
        b.transitKeyVersion !== undefined ? `v${b.transitKeyVersion}` : '-',
        humanSize(b.storedSize),
        ...(flagged ? [flags[i]?.flag ?? '-'] : []),
      ]),
    );
  }
  for (const key of incomplete)
    out += `warning: ${key} is incomplete (no metadata.json: an upload that failed or is still running); it cannot be restored\n`;
  for (const entry of invalid) out += `warning: ${entry.key} is invalid: ${entry.error}\n`;
  out += preMigrationSummary(backups, history);
  const lowest = lowestVersions(backups);
  const plaintext = backups.filter((b) => b.kind === 'plaintext').length;
  if (backups.length)
    out += `${plural(backups.length, 'backup')} in ${destination}${plaintext ? ` (${plaintext} plaintext)` : ''}\n`;
  for (const [key, version] of Object.entries(lowest))
    out += `lowest key version still needed: ${key} v${version} (min_decryption_version must not go above ${version})\n`;
  return out;
}

/** The -o json|yaml document (pure): the table's facts, never the wrapped key. */
export function inventoryDocument(
  where: { cluster: string; namespace: string; bucket: string; destinationPath: string },
  inventory: Inventory,
  history: MigrationHistory = {},
) {
  return {
    ...where,
    migration: {
      ...(history.lastCompleted ? { lastCompleted: isoSeconds(history.lastCompleted) } : {}),
      ...(history.running
        ? { running: { reason: history.running.reason, startedAt: isoSeconds(history.running.startedAt) } }
        : {}),
    },
    backups: inventory.backups.map((b) => {
      const flag = preMigration(b, history);
      return { ...publicBackup(b), ...(flag ? { preMigration: flag } : {}) };
    }),
    incomplete: inventory.incomplete,
    invalid: inventory.invalid,
    lowestKeyVersion: lowestVersions(inventory.backups),
  };
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const history = migrationHistory((cluster as { status?: KdcClusterStatus }).status);
  const { store, settings } = await clusterBackups(kube, namespace, cluster, args.flags, ctx.env);
  try {
    let inventory: Inventory;
    try {
      inventory = await listBackups(store, name);
    } catch (error) {
      throw failure(`listing ${settings.destinationPath}: ${describe(error)}`);
    }
    const format = outputFormat(args.flags);
    const doc = inventoryDocument(
      { cluster: name, namespace, bucket: settings.bucket, destinationPath: settings.destinationPath },
      inventory,
      history,
    );
    ctx.io.out(
      render(format, {
        document: doc,
        names: inventory.backups.map((b) => `backup/${b.key}`),
        table: () => renderInventory(settings.destinationPath, inventory, history),
      }),
    );
    return 0;
  } finally {
    store.destroy();
  }
}
