// rewrap-backups: after a KEK rotation, re-wrap every backup's DEK to the latest Transit key
// version (Transit batch rewrap: the DEK never leaves OpenBao), then replace dek.wrapped and
// metadata.json. snapshot.db.enc is never read or written: the wrapped key is outside
// everything the DEK authenticates. Per backup, metadata.json is written last and only if it
// still is the version we read (If-Match); if that write fails, the old metadata.json still
// restores, because the old wrapped key stays valid until min_decryption_version moves.
import type { Logger, TransitClient } from '@kdc/shared';
import { transitFailure } from './backup.ts';
import { describeError } from './errors.ts';
import { listBackups, type BackupInfo } from './inventory.ts';
import { ENVELOPE_OBJECTS } from './layout.ts';
import { serializeMetadata, withWrappedDek } from './metadata.ts';
import type { BackupStore } from './store/store.ts';

export interface RewrapOptions {
  store: BackupStore;
  transit: TransitClient;
  cluster: string;
  /** Only backups wrapped with this key (default: every key found; each needs policy access). */
  transitKey?: string;
  batchSize?: number;
  dryRun?: boolean;
  logger?: Logger;
}

export interface RewrapOutcome {
  key: string;
  transitKey: string;
  from: number;
  to?: number;
  status: 'rewrapped' | 'current' | 'failed' | 'would-rewrap';
  error?: string;
}

export interface RewrapResult {
  outcomes: RewrapOutcome[];
  latestVersion: Record<string, number>;
  failed: number;
}

export async function rewrapBackups(options: RewrapOptions): Promise<RewrapResult> {
  const { store, transit, logger } = options;
  const inventory = await listBackups(store, options.cluster);
  const envelopes = inventory.backups.filter(
    (b) => b.kind === 'envelope' && (!options.transitKey || b.transitKey === options.transitKey),
  );
  const byKey = new Map<string, BackupInfo[]>();
  for (const b of envelopes) byKey.set(b.transitKey!, [...(byKey.get(b.transitKey!) ?? []), b]);
  const outcomes: RewrapOutcome[] = [];
  const latestVersion: Record<string, number> = {};
  for (const entry of inventory.invalid)
    outcomes.push({ key: entry.key, transitKey: '?', from: 0, status: 'failed', error: entry.error });

  for (const [transitKey, backups] of byKey) {
    let latest: number;
    try {
      const key = await transit.readKey(transitKey);
      if (!key) throw new Error(`Transit key ${transitKey} does not exist`);
      latest = key.latestVersion;
    } catch (error) {
      const message = describeError(transitFailure('read', transitKey, error));
      for (const b of backups)
        outcomes.push({ key: b.key, transitKey, from: b.transitKeyVersion!, status: 'failed', error: message });
      continue;
    }
    latestVersion[transitKey] = latest;
    const stale = backups.filter((b) => b.transitKeyVersion! < latest);
    for (const b of backups)
      if (b.transitKeyVersion! >= latest)
        outcomes.push({ key: b.key, transitKey, from: b.transitKeyVersion!, status: 'current' });
    if (options.dryRun) {
      for (const b of stale)
        outcomes.push({ key: b.key, transitKey, from: b.transitKeyVersion!, to: latest, status: 'would-rewrap' });
      continue;
    }
    const batchSize = options.batchSize ?? 100;
    for (let i = 0; i < stale.length; i += batchSize) {
      const batch = stale.slice(i, i + batchSize);
      let results: Awaited<ReturnType<TransitClient['rewrapBatch']>>;
      try {
        results = await transit.rewrapBatch(
          transitKey,
          batch.map((b) => b.metadata!.wrappedDek),
        );
      } catch (error) {
        const message = describeError(transitFailure('rewrap', transitKey, error));
        for (const b of batch)
          outcomes.push({ key: b.key, transitKey, from: b.transitKeyVersion!, status: 'failed', error: message });
        continue;
      }
      for (const [j, b] of batch.entries()) {
        const result = results[j];
        if (!result || !result.ok) {
          outcomes.push({
            key: b.key,
            transitKey,
            from: b.transitKeyVersion!,
            status: 'failed',
            error: `Transit rewrap refused: ${result ? result.error : 'no result'}`,
          });
          continue;
        }
        const { ciphertext, keyVersion } = result.value;
        try {
          await store.putText(b.key + ENVELOPE_OBJECTS.wrappedDek, `${ciphertext}\n`, 'text/plain');
          await store.putText(
            b.key + ENVELOPE_OBJECTS.metadata,
            serializeMetadata(withWrappedDek(b.metadata!, ciphertext, keyVersion)),
            'application/json',
            b.metadataETag ? { ifMatch: b.metadataETag } : {},
          );
          outcomes.push({ key: b.key, transitKey, from: b.transitKeyVersion!, to: keyVersion, status: 'rewrapped' });
          logger?.info({ key: store.url(b.key), from: b.transitKeyVersion, to: keyVersion }, 'backup rewrapped');
        } catch (error) {
          outcomes.push({
            key: b.key,
            transitKey,
            from: b.transitKeyVersion!,
            status: 'failed',
            error: describeError(error),
          });
          logger?.warn(
            { key: store.url(b.key), err: describeError(error) },
            'rewrap of this backup failed; its old metadata.json still restores',
          );
        }
      }
    }
  }
  outcomes.sort((a, b) => a.key.localeCompare(b.key));
  return { outcomes, latestVersion, failed: outcomes.filter((o) => o.status === 'failed').length };
}
