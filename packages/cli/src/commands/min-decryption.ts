// The min_decryption_version pre-flight (SPEC 5), pure: given the Transit key's state and what
// every backup and etcd row of the namespace's clusters still needs, may version N become the
// lowest one Transit decrypts with?
import { plural, table } from '../terminal/format.ts';
import type { EtcdRowCounts } from '../clients/etcd-rows.ts';

export interface KeyState {
  transitKey: string;
  latestVersion: number;
  minDecryptionVersion: number;
}

export type BackupInventory =
  | { status: 'read'; destination: string; total: number; ofKey: number; versions: Record<number, number> }
  | { status: 'error'; error: string; required: boolean }
  | { status: 'skipped'; reason: string };

export type EtcdInventory =
  | { status: 'read'; prefix: string; counts: EtcdRowCounts }
  | { status: 'unprovable'; reason: string }
  | { status: 'skipped'; reason: string };

export interface ClusterInventory {
  cluster: string;
  backups: BackupInventory;
  etcd: EtcdInventory;
}

export interface DecisionInput {
  namespace: string;
  kmsKey: string;
  target: number;
  key: KeyState;
  clusters: readonly ClusterInventory[];
}

export type Decision =
  | { action: 'advance'; code: 0; message: string; warnings: string[] }
  | { action: 'nothing'; code: 0; message: string; warnings: string[] }
  | { action: 'refuse'; code: 1; reasons: string[]; warnings: string[] };

const versionsBelow = (versions: Record<number, number>, target: number) =>
  Object.entries(versions)
    .map(([v, n]) => [Number(v), n] as const)
    .filter(([v]) => v < target)
    .sort((a, b) => a[0] - b[0]);

const describeVersions = (entries: readonly (readonly [number, number])[], unit: string) =>
  entries.map(([v, n]) => `v${v} (${plural(n, unit)})`).join(', ');

/** The checks that need only the Transit key; null when the inventory decides. */
export function keyStateDecision(target: number, key: KeyState): Exclude<Decision, { action: 'advance' }> | null {
  if (target > key.latestVersion) {
    return {
      action: 'refuse',
      code: 1,
      warnings: [],
      reasons: [
        `transit key ${key.transitKey} has no version ${target}: its latest version is ${key.latestVersion} (rotate the KMSKey first, then rewrap)`,
      ],
    };
  }
  if (target <= key.minDecryptionVersion) {
    return {
      action: 'nothing',
      code: 0,
      warnings: [],
      message: `nothing to do: min_decryption_version of ${key.transitKey} is already ${key.minDecryptionVersion} (>= ${target}); it never moves backwards here`,
    };
  }
  return null;
}

export function minDecryptionDecision(input: DecisionInput): Decision {
  const { namespace, target, key } = input;
  const early = keyStateDecision(target, key);
  if (early) return early;
  const reasons: string[] = [];
  const warnings: string[] = [];
  for (const c of input.clusters) {
    const b = c.backups;
    if (b.status === 'read') {
      const below = versionsBelow(b.versions, target);
      if (below.length) {
        reasons.push(
          `backups of cluster ${c.cluster} still need ${key.transitKey} ${describeVersions(below, 'backup')}: run "kubectl kdc backups rewrap ${c.cluster} -n ${namespace}"`,
        );
      }
    } else if (b.status === 'error') {
      if (b.required)
        reasons.push(
          `cannot list the backups of cluster ${c.cluster} (${b.error}): cannot prove none needs a version below ${target}; fix that and run again`,
        );
      else
        warnings.push(
          `backups of cluster ${c.cluster} not read (${b.error}); it does not reference KMSKey ${input.kmsKey}`,
        );
    } else {
      warnings.push(`backups of cluster ${c.cluster} not read: ${b.reason}`);
    }
    const e = c.etcd;
    if (e.status === 'read') {
      const below = versionsBelow(e.counts.byVersion, target);
      if (below.length) {
        reasons.push(
          `etcd rows of cluster ${c.cluster} under ${e.prefix} still use ${describeVersions(below, 'row')}: run "kubectl kdc rewrap-etcd ${c.cluster} -n ${namespace}"`,
        );
      }
      if (e.counts.unreadable > 0) {
        reasons.push(
          `${plural(e.counts.unreadable, 'etcd row')} of cluster ${c.cluster} carry our KMS prefix but no readable key version (e.g. ${e.counts.unreadableExamples[0] ?? '?'}): cannot prove they do not need a version below ${target}`,
        );
      }
    } else if (e.status === 'unprovable') {
      reasons.push(`etcd rows of cluster ${c.cluster}: ${e.reason}`);
    }
  }
  if (reasons.length) return { action: 'refuse', code: 1, reasons, warnings };
  return {
    action: 'advance',
    code: 0,
    warnings,
    message: `no backup and no etcd row needs a version below ${target} of ${key.transitKey}`,
  };
}

export function renderInventory(input: DecisionInput): string {
  const { key, clusters } = input;
  let out = `transit key ${key.transitKey} (KMSKey ${input.namespace}/${input.kmsKey}): latest_version ${key.latestVersion}, min_decryption_version ${key.minDecryptionVersion}, target ${input.target}\n`;
  if (clusters.length === 0) return `${out}no KdcCluster in namespace ${input.namespace}\n`;
  const versions = (v: Record<number, number>) =>
    Object.entries(v)
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .map(([k, n]) => `v${k}:${n}`)
      .join(' ') || '-';
  out += '\nbackups:\n';
  out += table(
    ['CLUSTER', 'BACKUPS', 'OF THIS KEY', 'BY VERSION'],
    clusters.map((c) => {
      const b = c.backups;
      if (b.status === 'read') return [c.cluster, String(b.total), String(b.ofKey), versions(b.versions)];
      return [c.cluster, '?', '?', b.status === 'error' ? `not read: ${b.error}` : `skipped: ${b.reason}`];
    }),
  );
  out += '\netcd rows:\n';
  out += table(
    ['CLUSTER', 'PREFIX', 'ROWS', 'KMS BY VERSION', 'PLAINTEXT', 'OTHER PROVIDERS', 'UNREADABLE'],
    clusters.map((c) => {
      const e = c.etcd;
      if (e.status !== 'read')
        return [
          c.cluster,
          '-',
          '?',
          e.status === 'unprovable' ? 'not read (see below)' : `skipped: ${e.reason}`,
          '',
          '',
          '',
        ];
      const other =
        Object.entries(e.counts.otherProviders)
          .map(([p, n]) => `${p}:${n}`)
          .join(' ') || '0';
      return [
        c.cluster,
        e.prefix,
        String(e.counts.rows),
        versions(e.counts.byVersion),
        String(e.counts.plaintext),
        other,
        String(e.counts.unreadable),
      ];
    }),
  );
  return out;
}
