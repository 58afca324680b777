// "latest", as the job resolves it: the newest backup whose data key authenticates it. A bucket
// writer can add a metadata.json claiming any createdAt, but not one that the data key behind
// this cluster's Transit key derives the header's key check from: that check binds createdAt,
// the source cluster and namespace, the Transit key and the segment size. Costs one 85-byte
// ranged GET and one Transit decrypt per candidate, newest first, until one verifies.
import type { Logger, TransitClient } from '@kdc/shared';
import { transitFailure } from './backup.ts';
import { BackupError, describeError, isBackupError } from './errors.ts';
import { StreamDecryptor } from './format/decrypt.ts';
import { HEADER_LENGTH } from './format/spec.ts';
import { latestCandidates, type BackupInfo } from './inventory.ts';
import { ENVELOPE_OBJECTS } from './layout.ts';
import { decryptExpectation } from './metadata.ts';
import { checkRestoreTarget } from './restore/locate.ts';
import type { BackupStore } from './store/store.ts';

export interface Expected {
  cluster: string;
  namespace: string;
  transitKey?: string;
}

/** How many forged candidates a "latest" walks past before it gives up. */
export const MAX_LATEST_TRIES = 16;

/** Throws the BackupError that says why `backup` is not an authentic backup of `expected`. */
export async function verifyBackup(
  store: BackupStore,
  transit: TransitClient,
  backup: BackupInfo,
  expected: Expected,
): Promise<void> {
  const m = backup.metadata;
  if (!m || m.schemaVersion !== 2)
    throw new BackupError(
      'UNSUPPORTED_FORMAT',
      `${backup.key} is not a schemaVersion 2 envelope: its createdAt cannot be verified`,
    );
  checkRestoreTarget(m, backup.key, expected.cluster, expected.transitKey, expected.namespace);
  const header = Buffer.alloc(HEADER_LENGTH);
  await store.getRange(backup.key + ENVELOPE_OBJECTS.snapshot, 0, HEADER_LENGTH, header);
  const decryptor = new StreamDecryptor({
    expect: decryptExpectation(m),
    unwrap: async () => {
      try {
        return await transit.decrypt(m.transitKey, m.wrappedDek);
      } catch (error) {
        throw transitFailure('decrypt', m.transitKey, error);
      }
    },
  });
  await decryptor.openHeader(header);
}

/** The newest backup that verifies; planted candidates on the way are logged and skipped. */
export async function latestVerified(
  store: BackupStore,
  transit: TransitClient,
  backups: readonly BackupInfo[],
  expected: Expected,
  logger?: Logger,
): Promise<BackupInfo> {
  const candidates = latestCandidates(backups);
  const skipped: string[] = [];
  for (const candidate of candidates.slice(0, MAX_LATEST_TRIES)) {
    try {
      await verifyBackup(store, transit, candidate, expected);
      return candidate;
    } catch (error) {
      // S3 or OpenBao being away is not a verdict on the backup: stop, do not pick an older one.
      if (!isBackupError(error) || error.code === 'IO_FAILED') throw error;
      logger?.warn(
        { key: store.url(candidate.key), err: describeError(error) },
        'skipping a backup that does not verify (planted or altered)',
      );
      skipped.push(`${candidate.key} (${error.code})`);
    }
  }
  const why = skipped.length
    ? `; these do not verify: ${skipped.join(', ')}${candidates.length > MAX_LATEST_TRIES ? `, and ${candidates.length - MAX_LATEST_TRIES} more were not tried` : ''}`
    : '';
  throw new BackupError(
    'NOT_FOUND',
    `no authentic schemaVersion 2 backup of cluster ${expected.cluster} in ${store.url(`${expected.cluster}/`)} to restore as "latest"${why}: name a backup with --backup`,
  );
}
