// The coverage scan: every stored row of the configured resources of one tenant, read from its
// DataStore at one revision and classified by its full key_id. One scanner for the controller
// (status.encryption.coverage, the migration's proof of completion) and the CLI (the
// min_decryption_version pre-flight).
import { EtcdReadError } from './errors.ts';
import { openEtcdKvReader, type EtcdConnection, type EtcdReaderOptions, type EtcdRowsOptions } from './reader.ts';
import { resourcePrefix } from './prefix.ts';
import { classifyRow, emptyTally, tallyRow, type CoverageTally } from './rows.ts';

export interface CoverageScanInput {
  connection: EtcdConnection;
  /** The tenant's prefix with a trailing '/', from tenantEtcdPrefix(tcp). */
  prefix: string;
  /** Resources to scan, e.g. the cluster's spec.encryption.etcd.resources (["secrets"]). */
  resources: readonly string[];
  /** key_ids the tenant's plugins publish now; empty when none is current (a disable). */
  currentKeyIds: Iterable<string>;
  /** KMS v2 provider names that are ours (default: the platform's one provider name). */
  providers?: readonly string[];
  /**
   * Called after every batch with the rows classified so far and the rows counted at the start;
   * a returned promise is awaited (e.g. to record progress). After a compaction restart, scanned
   * starts again from 0.
   */
  onProgress?: (progress: { scanned: number; total: number; revision: number }) => void | Promise<void>;
  signal?: AbortSignal;
  /** Deadline of each call, ms (default 30 s). */
  callTimeoutMs?: number;
  /** Paging knobs (tests, benchmarks). */
  paging?: EtcdRowsOptions & Pick<EtcdReaderOptions, 'maxMessageBytes'>;
  /** Scans restarted at a newer revision when etcd compacts the one in use (default 2). */
  compactionRetries?: number;
  now?: () => Date;
}

export interface CoverageScan extends CoverageTally {
  prefix: string;
  resources: string[];
  /** The etcd revision every row was read at. */
  revision: number;
  /**
   * Keys under the whole tenant prefix (any resource) at that revision. 0 means no apiserver
   * ever wrote there: the wrong DataStore or prefix, which proves nothing about coverage.
   */
  prefixKeys: number;
  /** When the revision was taken (RFC 3339). */
  scannedAt: string;
  durationMs: number;
}

/** Reads and classifies every row of `resources` under `prefix`; throws EtcdReadError. */
export async function scanCoverage(input: CoverageScanInput): Promise<CoverageScan> {
  const resources = [...new Set(input.resources)];
  const prefixes = resources.map((r) => resourcePrefix(input.prefix, r));
  const current = new Set(input.currentKeyIds);
  const now = input.now ?? (() => new Date());
  const reader = openEtcdKvReader(input.connection, {
    signal: input.signal,
    callTimeoutMs: input.callTimeoutMs,
    maxMessageBytes: input.paging?.maxMessageBytes,
  });
  let retries = input.compactionRetries ?? 2;
  try {
    for (;;) {
      const started = Date.now();
      const scannedAt = now().toISOString();
      try {
        const whole = await reader.count(input.prefix);
        const revision = whole.revision;
        let total = 0;
        for (const p of prefixes) total += (await reader.count(p, revision)).count;
        const tally = emptyTally();
        for (const [i, p] of prefixes.entries()) {
          for await (const batch of reader.rows(p, revision, input.paging)) {
            for (const row of batch) {
              tallyRow(
                tally,
                resources[i]!,
                row.key.toString('utf8'),
                classifyRow(row.value, { current, providers: input.providers }),
              );
            }
            await input.onProgress?.({ scanned: tally.total, total, revision });
          }
        }
        if (tally.total !== total) {
          throw new EtcdReadError(
            'inconsistent',
            `etcd ${reader.endpoint}: counted ${total} rows under ${input.prefix} at revision ${revision} but read ${tally.total}`,
          );
        }
        return {
          ...tally,
          prefix: input.prefix,
          resources,
          revision,
          prefixKeys: whole.count,
          scannedAt,
          durationMs: Date.now() - started,
        };
      } catch (error) {
        if (error instanceof EtcdReadError && error.kind === 'compacted' && retries-- > 0) continue;
        throw error;
      }
    }
  } finally {
    reader.close();
  }
}
