// `kdc-backup restore`: resolve "latest" to the newest backup whose data key verifies, then restore it
// into a fresh data dir or a file; prints one JSON line with the result.
import type { TransitClient } from '@kdc/shared/openbao';
import type { CliConfig } from '../config.ts';
import { BackupError } from '../errors.ts';
import { listBackups } from '../inventory.ts';
import { restoreBackup } from '../restore/restore.ts';
import { latestVerified } from '../verify.ts';
import { print, type CommandContext } from './context.ts';

type RestoreConfig = Extract<CliConfig, { command: 'restore' }>;

async function resolveKey(config: RestoreConfig, transit: TransitClient, ctx: CommandContext): Promise<string> {
  if (config.backup !== 'latest') return config.backup;
  const { store, logger } = ctx;
  const { backups } = await listBackups(store, config.cluster);
  if (!backups.length)
    throw new BackupError(
      'NOT_FOUND',
      `no backups of cluster ${config.cluster} in s3://${store.bucket}/${config.cluster}/`,
    );
  const expect = {
    cluster: config.cluster,
    namespace: config.namespace,
    ...(config.transitKey ? { transitKey: config.transitKey } : {}),
  };
  const { key } = await latestVerified(store, transit, backups, expect, logger);
  logger.info({ key: store.url(key) }, 'restoring the latest backup');
  return key;
}

export async function restoreCommand(
  config: RestoreConfig,
  transit: TransitClient,
  ctx: CommandContext,
): Promise<number> {
  const result = await restoreBackup({
    store: ctx.store,
    transit,
    cluster: config.cluster,
    namespace: config.namespace,
    key: await resolveKey(config, transit, ctx),
    ...(config.transitKey ? { expectedTransitKey: config.transitKey } : {}),
    allowUnauthenticated: config.allowUnauthenticated,
    destination: config.destination,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  print(result);
  return 0;
}
