// `kdc-backup list`: the cluster's backups, as a table or JSON lines with a summary line last.
import type { CliConfig } from '../config.ts';
import { listBackups, minKeyVersion } from '../inventory.ts';
import { print, type CommandContext } from './context.ts';

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

export async function listCommand(
  config: Extract<CliConfig, { command: 'list' }>,
  ctx: CommandContext,
): Promise<number> {
  const { store, logger } = ctx;
  const inventory = await listBackups(store, config.cluster);
  for (const prefix of inventory.incomplete)
    logger.warn({ key: store.url(prefix) }, 'prefix without metadata.json (an unfinished upload): not a backup');
  for (const bad of inventory.invalid)
    logger.warn({ key: store.url(bad.key), err: bad.error }, 'unreadable metadata.json');
  const rows = inventory.backups.map((b) => ({
    key: b.key,
    kind: b.kind,
    createdAt: b.createdAt.toISOString(),
    schemaVersion: b.schemaVersion ?? null,
    transitKey: b.transitKey ?? null,
    transitKeyVersion: b.transitKeyVersion ?? null,
    plaintextSize: b.plaintextSize ?? null,
    storedSize: b.storedSize ?? null,
  }));
  const lowest = minKeyVersion(inventory.backups);
  if (config.json) {
    for (const row of rows) print(row);
    print({
      summary: true,
      backups: rows.length,
      minKeyVersion: lowest,
      incomplete: inventory.incomplete.length,
      invalid: inventory.invalid.length,
    });
    return 0;
  }
  process.stdout.write(
    formatTable([
      ['KEY', 'CREATED', 'SCHEMA', 'TRANSIT KEY', 'VERSION', 'PLAINTEXT', 'STORED'],
      ...rows.map((r) => [
        r.key,
        r.createdAt,
        String(r.schemaVersion ?? r.kind),
        r.transitKey ?? '-',
        r.transitKeyVersion === null ? '-' : `v${r.transitKeyVersion}`,
        String(r.plaintextSize ?? '-'),
        String(r.storedSize ?? '-'),
      ]),
    ]),
  );
  process.stdout.write(`${rows.length} backup(s); lowest key version still needed: ${lowest ?? 'none'}\n`);
  return 0;
}
