// What every kdc-backup command gets: its configuration, the bucket, an OpenBao session when it needs
// one, a logger and the cancel signal; and how a command prints its result (JSON lines on stdout).
import { readFileSync } from 'node:fs';
import type { Logger } from '@kdc/shared/log';
import { OpenBaoClient } from '@kdc/shared/openbao';
import { openBaoSession, type Session } from '../auth.ts';
import type { OpenBaoConfig } from '../config.ts';
import { BackupError } from '../errors.ts';
import { BackupStore } from '../store/store.ts';
import type { S3Settings } from '../store/client.ts';

export interface CommandContext {
  store: BackupStore;
  logger: Logger;
  signal: AbortSignal;
}

export const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

/** A PEM or CA file a flag names; unreadable is the user's to fix, and says which flag. */
export function readConfigFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new BackupError('IO_FAILED', `${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

export function openStore(s3: S3Settings & { caFile?: string }): BackupStore {
  return BackupStore.fromSettings({
    ...s3,
    ...(s3.caFile ? { caPem: readConfigFile(s3.caFile, '--s3-ca-file') } : {}),
  });
}

export function openBao(config: OpenBaoConfig): Promise<Session> {
  const base = new OpenBaoClient({
    endpoint: config.addr,
    ...(config.caFile ? { caBundle: readConfigFile(config.caFile, '--openbao-ca-file') } : {}),
    ...(config.namespace ? { namespace: config.namespace } : {}),
    timeoutMs: 30_000,
  });
  return openBaoSession(base, config.auth);
}
