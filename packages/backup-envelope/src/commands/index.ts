// Runs one parsed kdc-backup command: the bucket for all of them, an OpenBao session for those that
// touch data keys (revoked at the end), and nothing left open that would keep a Job's pod alive.
import type { Logger } from '@kdc/shared/log';
import type { Session } from '../auth.ts';
import type { CliConfig } from '../config.ts';
import { backupCommand } from './backup.ts';
import { openBao, openStore } from './context.ts';
import { listCommand } from './list.ts';
import { restoreCommand } from './restore.ts';
import { rewrapCommand } from './rewrap.ts';

export async function runCommand(config: CliConfig, logger: Logger, signal: AbortSignal): Promise<number> {
  const ctx = { store: openStore(config.s3), logger, signal };
  let session: Session | undefined;
  try {
    if (config.command === 'list') return await listCommand(config, ctx);
    session = await openBao(config.openbao);
    const transit = session.client.transit(config.openbao.transitMount);
    if (config.command === 'backup') return await backupCommand(config, transit, ctx);
    if (config.command === 'restore') return await restoreCommand(config, transit, ctx);
    return await rewrapCommand(config, transit, ctx);
  } finally {
    await session?.close();
    ctx.store.destroy();
  }
}
