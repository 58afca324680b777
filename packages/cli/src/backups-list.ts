// kubectl kdc backups list <cluster>: what is in the cluster's bucket, which Transit key
// version each backup needs, and what is broken.
import { listBackups, minKeyVersion, type BackupInfo, type Inventory } from '@kdc/backup-envelope';
import { bool, type CommandSpec, type ParsedArgs } from './args.ts';
import { S3_FLAGS, clusterBackups } from './backup-access.ts';
import type { CommandContext } from './context.ts';
import { describe, failure } from './errors.ts';
import { humanSize, isoSeconds, plural, table } from './format.ts';
import { KUBE_FLAGS, getKdcCluster, kubeAccess } from './kube.ts';

export const spec: CommandSpec = {
  name: 'backups list',
  positionals: ['cluster'],
  summary: "Lists the cluster's etcd backups in its bucket: key, creation time, Transit key and version, size; incomplete and invalid backups; the lowest Transit key version the backups still need.",
  flags: { ...KUBE_FLAGS, ...S3_FLAGS, json: { type: 'boolean', help: 'print one JSON document instead of a table' } },
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
  const keys = [...new Set(backups.filter((b) => b.kind === 'envelope' && b.transitKey).map((b) => b.transitKey!))].sort();
  return Object.fromEntries(keys.map((k) => [k, minKeyVersion(backups, k)!]));
}

export function renderInventory(destination: string, inventory: Inventory): string {
  const { backups, incomplete, invalid } = inventory;
  let out = '';
  if (backups.length === 0) {
    out += `no backups in ${destination}\n`;
  } else {
    out += table(
      ['KEY', 'CREATED', 'TRANSIT KEY', 'VERSION', 'SIZE'],
      backups.map((b) => [b.key, isoSeconds(b.createdAt), b.kind === 'plaintext' ? '(plaintext)' : (b.transitKey ?? '-'), b.transitKeyVersion !== undefined ? `v${b.transitKeyVersion}` : '-', humanSize(b.storedSize)]),
    );
  }
  for (const key of incomplete) out += `warning: ${key} is incomplete (no metadata.json: an upload that failed or is still running); it cannot be restored\n`;
  for (const entry of invalid) out += `warning: ${entry.key} is invalid: ${entry.error}\n`;
  const lowest = lowestVersions(backups);
  const plaintext = backups.filter((b) => b.kind === 'plaintext').length;
  if (backups.length) out += `${plural(backups.length, 'backup')} in ${destination}${plaintext ? ` (${plaintext} plaintext)` : ''}\n`;
  for (const [key, version] of Object.entries(lowest)) out += `lowest key version still needed: ${key} v${version} (min_decryption_version must not go above ${version})\n`;
  return out;
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const { kube, namespace } = kubeAccess(args.flags, ctx.env);
  const name = args.positionals.cluster!;
  const cluster = await getKdcCluster(kube, namespace, name);
  const { store, settings } = await clusterBackups(kube, namespace, cluster, args.flags, ctx.env);
  try {
    let inventory: Inventory;
    try {
      inventory = await listBackups(store, name);
    } catch (error) {
      throw failure(`listing ${settings.destinationPath}: ${describe(error)}`);
    }
    if (bool(args.flags, 'json')) {
      const doc = {
        cluster: name,
        namespace,
        bucket: settings.bucket,
        destinationPath: settings.destinationPath,
        backups: inventory.backups.map(publicBackup),
        incomplete: inventory.incomplete,
        invalid: inventory.invalid,
        lowestKeyVersion: lowestVersions(inventory.backups),
      };
      ctx.io.out(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      ctx.io.out(renderInventory(settings.destinationPath, inventory));
    }
    return 0;
  } finally {
    store.destroy();
  }
}
