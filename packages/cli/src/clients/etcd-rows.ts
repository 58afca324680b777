// The min_decryption_version pre-flight's view of a coverage scan (pure): which Transit versions
// the rows of our providers still reference, read from the scan's per-key_id counts. A key_id
// whose version cannot be read proves nothing, so it is reported as unreadable (a refusal).
import { versionOfKeyId, type CoverageScan } from '@kdc/shared/etcd';

export interface EtcdRowCounts {
  rows: number;
  /** Transit key version -> rows of our plugin wrapped with it. */
  byVersion: Record<number, number>;
  plaintext: number;
  otherProviders: Record<string, number>;
  unreadable: number;
  /** A few unreadable rows or key_ids with the reason, to look at. */
  unreadableExamples: string[];
}

export const emptyCounts = (): EtcdRowCounts => ({
  rows: 0,
  byVersion: {},
  plaintext: 0,
  otherProviders: {},
  unreadable: 0,
  unreadableExamples: [],
});

type ScanCounts = Pick<
  CoverageScan,
  'total' | 'plaintext' | 'unreadable' | 'byKeyId' | 'otherProviders' | 'unreadableExamples'
>;

export function rowCountsOf(scan: ScanCounts): EtcdRowCounts {
  const counts: EtcdRowCounts = {
    ...emptyCounts(),
    rows: scan.total,
    plaintext: scan.plaintext,
    otherProviders: { ...scan.otherProviders },
    unreadable: scan.unreadable,
    unreadableExamples: [...scan.unreadableExamples],
  };
  for (const [keyId, n] of Object.entries(scan.byKeyId)) {
    const version = versionOfKeyId(keyId);
    if (version !== null) {
      counts.byVersion[version] = (counts.byVersion[version] ?? 0) + n;
      continue;
    }
    counts.unreadable += n;
    if (counts.unreadableExamples.length < 3)
      counts.unreadableExamples.push(
        `${n === 1 ? '1 row' : `${n} rows`} under key_id "${keyId.slice(0, 64)}", not kdc2/kdc1.v<N>.<id>`,
      );
  }
  return counts;
}
