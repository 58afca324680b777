// `kdc-backup rewrap`: rewrap every backup data key of the cluster to the latest Transit key version;
// one JSON line per backup and a summary; exit 1 when any failed.
import type { TransitClient } from '@kdc/shared/openbao';
import type { CliConfig } from '../config.ts';
import { rewrapBackups } from '../rewrap.ts';
import { print, type CommandContext } from './context.ts';

export async function rewrapCommand(
  config: Extract<CliConfig, { command: 'rewrap' }>,
  transit: TransitClient,
  ctx: CommandContext,
): Promise<number> {
  const result = await rewrapBackups({
    store: ctx.store,
    transit,
    cluster: config.cluster,
    ...(config.transitKey ? { transitKey: config.transitKey } : {}),
    dryRun: config.dryRun,
    logger: ctx.logger,
  });
  for (const outcome of result.outcomes) print(outcome);
  print({
    summary: true,
    backups: result.outcomes.length,
    rewrapped: result.outcomes.filter((o) => o.status === 'rewrapped').length,
    failed: result.failed,
    latestVersion: result.latestVersion,
  });
  return result.failed ? 1 : 0;
}
