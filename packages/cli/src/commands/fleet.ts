// kubectl kdc fleet: the platform's one table of every encrypted KdcCluster, so that an operator
// sees at a glance which tenants run an old KEK, missed a rotation, still hold rows under another
// key_id, have a plugin down, or have not been backed up. Only status facts, nothing secret.
import {
  clusterNames,
  parseKmsKeyInterval,
  type KdcClusterStatus,
  type KmsKeyStatus,
  type KubeObject,
  RESOURCES,
  at,
} from '@kdc/shared';
import { bool, str, type CommandSpec, type ParsedArgs } from '../terminal/args.ts';
import type { CommandContext } from '../context.ts';
import { isoSeconds, plural, table } from '../terminal/format.ts';
import { KUBE_FLAGS, kubeAccess, kubeFailure } from '../clients/kube.ts';
import { OUTPUT_FLAG, outputFormat, render, type Printable } from '../terminal/output.ts';

export const spec: CommandSpec = {
  name: 'fleet',
  positionals: [],
  summary:
    'Lists every encrypted KdcCluster of the platform: key, KEK version and age, rotation policy (OVERDUE when the KEK is older than it), the coverage of the last scan, the last re-wrap, plugin health and the latest backup. Exits 1 when a rotation is overdue or a plugin is not ready.',
  flags: {
    ...KUBE_FLAGS,
    // The platform view is the default: -n narrows it to one project namespace.
    namespace: { ...KUBE_FLAGS.namespace!, help: 'only this namespace (default: every namespace)' },
    ...OUTPUT_FLAG,
    'all-namespaces': {
      type: 'boolean',
      short: 'A',
      help: 'every namespace (the default; wins over -n, as in kubectl)',
    },
  },
};

interface ClusterSpec {
  encryption?: {
    etcd?: { enabled?: boolean; keyRef?: string; kekRotation?: { enabled?: boolean; interval?: string } };
  };
}
export type FleetCluster = KubeObject & { spec?: ClusterSpec; status?: KdcClusterStatus };
export type FleetKey = KubeObject & {
  spec?: { rotation?: { enabled?: boolean; interval?: string } };
  status?: KmsKeyStatus;
};

export interface FleetRow {
  namespace: string;
  name: string;
  keyRef: string | null;
  kekVersion: number | null;
  kekAgeSeconds: number | null;
  /** null: rotation is off. */
  rotationInterval: string | null;
  rotationOverdue: boolean;
  coverage: { current: number; total: number; stale: number; plaintext: number; scannedAt: string } | null;
  lastRewrapCompleted: string | null;
  pluginReady: boolean;
  latestBackupTime: string | null;
  /** The Ready condition's status; null before the first reconcile. */
  ready: string | null;
}

/** A cluster asked to encrypt, or one still using a key (it keeps resolvedKeyRef until the disable migration ends). */
export const isEncrypted = (c: FleetCluster) =>
  c.spec?.encryption?.etcd?.enabled === true || Boolean(c.status?.encryption?.resolvedKeyRef);

const epoch = (time: string | undefined): number | undefined => {
  const ms = time === undefined ? NaN : Date.parse(time);
  return Number.isNaN(ms) ? undefined : ms;
};

/** The fleet's rows (pure), sorted by namespace and name; KMSKeys are joined in memory by namespace and name. */
export function fleetRows(clusters: readonly FleetCluster[], kmsKeys: readonly FleetKey[], now: Date): FleetRow[] {
  const keys = new Map(kmsKeys.map((k) => [`${k.metadata?.namespace}/${k.metadata?.name}`, k]));
  return clusters
    .filter(isEncrypted)
    .map((c) => {
      const namespace = c.metadata?.namespace ?? '';
      const name = c.metadata?.name ?? '';
      const e = c.status?.encryption;
      const mirror = e?.kekRotation;
      // The key in use; before the first reconcile, the one the spec names (or the auto key).
      const keyName = e?.resolvedKeyRef ?? c.spec?.encryption?.etcd?.keyRef ?? clusterNames(name).autoEtcdKey;
      const key = keys.get(`${namespace}/${keyName}`);
      // The KMSKey's policy is what rotates; until it exists, what the cluster asks its auto key for.
      const policy = key ? key.spec?.rotation : c.spec?.encryption?.etcd?.kekRotation;
      const rotationInterval = policy?.enabled && policy.interval ? policy.interval : null;
      const rotated = epoch(key?.status?.lastRotatedTime ?? mirror?.lastRotatedTime);
      const kekAgeSeconds = rotated === undefined ? null : Math.max(0, Math.floor((now.getTime() - rotated) / 1000));
      const interval = rotationInterval ? parseKmsKeyInterval(rotationInterval) : undefined;
      // An adopted key is first rotated one interval after it was claimed, whatever its age: a
      // nextRotationTime still ahead means the rotation is not due yet.
      const next = epoch(key?.status?.nextRotationTime ?? mirror?.nextRotationTime);
      const rotationOverdue = Boolean(
        interval?.ok &&
        kekAgeSeconds !== null &&
        kekAgeSeconds > interval.seconds &&
        (next === undefined || next <= now.getTime()),
      );
      const cov = e?.coverage;
      return {
        namespace,
        name,
        keyRef: e?.resolvedKeyRef ?? null,
        kekVersion: e?.currentKeyVersion ?? mirror?.currentVersion ?? null,
        kekAgeSeconds,
        rotationInterval,
        rotationOverdue,
        coverage: cov
          ? {
              current: cov.current,
              total: cov.total,
              stale: cov.stale,
              plaintext: cov.plaintext,
              scannedAt: cov.scannedAt,
            }
          : null,
        lastRewrapCompleted: e?.lastRewrapCompleted ?? null,
        pluginReady: e?.kmsPluginReady === true,
        latestBackupTime: c.status?.latestBackupTime ?? null,
        ready: c.status?.conditions?.find((x) => x.type === 'Ready')?.status ?? null,
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** kubectl's short age: 45s, 12m, 5h, 12d, 2y. */
export function shortAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  if (s < 365 * 86_400) return `${Math.floor(s / 86_400)}d`;
  return `${Math.floor(s / (365 * 86_400))}y`;
}

const ageOf = (time: string | null, now: Date) => {
  const at = epoch(time ?? undefined);
  return at === undefined ? '-' : shortAge((now.getTime() - at) / 1000);
};

/** Needs attention: the exit code is 1 when any row does. */
export const unhealthy = (r: FleetRow) => r.rotationOverdue || !r.pluginReady;

export function fleetSummary(rows: readonly FleetRow[]): string {
  const overdue = rows.filter((r) => r.rotationOverdue).length;
  const down = rows.filter((r) => !r.pluginReady).length;
  return `${plural(rows.length, 'encrypted cluster')}; ${plural(overdue, 'rotation')} overdue; ${plural(down, 'plugin')} not ready\n`;
}

/** The table (pure), with the summary line; wide adds READY, the coverage breakdown and the scan's age. */
export function fleetTable(rows: readonly FleetRow[], now: Date, wide = false, scope = 'any namespace'): string {
  if (!rows.length) return `No encrypted KdcClusters in ${scope}.\n`;
  const header = [
    'NAMESPACE',
    'CLUSTER',
    ...(wide ? ['READY'] : []),
    'KEY',
    'KEK',
    'KEK-AGE',
    'ROTATION',
    'COVERAGE',
    ...(wide ? ['SCANNED'] : []),
    'LAST-REWRAP',
    'PLUGIN',
    'LATEST-BACKUP',
  ];
  const cells = rows.map((r) => {
    const c = r.coverage;
    const coverage = !c
      ? '-'
      : wide
        ? `${c.current}/${c.total} (${c.stale} stale, ${c.plaintext} plaintext)`
        : `${c.current}/${c.total}`;
    return [
      r.namespace,
      r.name,
      ...(wide ? [r.ready ?? '-'] : []),
      r.keyRef ?? '-',
      r.kekVersion === null ? '-' : `v${r.kekVersion}`,
      r.kekAgeSeconds === null ? '-' : shortAge(r.kekAgeSeconds),
      `${r.rotationInterval ?? 'off'}${r.rotationOverdue ? ' OVERDUE' : ''}`,
      coverage,
      ...(wide ? [ageOf(c?.scannedAt ?? null, now)] : []),
      ageOf(r.lastRewrapCompleted, now),
      r.pluginReady ? 'ready' : 'not ready',
      ageOf(r.latestBackupTime, now),
    ];
  });
  return table(header, cells) + fleetSummary(rows);
}

export function fleetDocument(rows: readonly FleetRow[], now: Date) {
  return {
    apiVersion: 'cli.kube-dc.com/v1alpha1',
    kind: 'Fleet',
    generatedAt: isoSeconds(now),
    clusters: rows.map((r) => ({ ...r })),
  };
}

/** Every -o format of the fleet (pure). */
export function fleetPrintable(rows: readonly FleetRow[], now: Date, scope?: string): Printable {
  return {
    document: fleetDocument(rows, now),
    names: rows.map((r) => `kdccluster/${r.namespace}/${r.name}`),
    table: () => fleetTable(rows, now, false, scope),
    wide: () => fleetTable(rows, now, true, scope),
  };
}

export async function execute(args: ParsedArgs, ctx: CommandContext): Promise<number> {
  const format = outputFormat(args.flags);
  const { kube } = kubeAccess(args.flags, ctx.env);
  const namespace = bool(args.flags, 'all-namespaces') ? undefined : str(args.flags, 'namespace');
  const where = namespace ? `namespace "${namespace}"` : 'every namespace';
  let clusters: FleetCluster[];
  try {
    clusters = (await kube.list(at(RESOURCES.kdcCluster, namespace))).items;
  } catch (error) {
    throw kubeFailure(`listing KdcClusters in ${where}`, error);
  }
  let keys: FleetKey[] = [];
  if (clusters.some(isEncrypted)) {
    try {
      keys = (await kube.list(at(RESOURCES.kmsKey, namespace))).items;
    } catch (error) {
      throw kubeFailure(`listing KMSKeys in ${where}`, error);
    }
  }
  const now = ctx.now();
  const rows = fleetRows(clusters, keys, now);
  ctx.io.out(render(format, fleetPrintable(rows, now, namespace ? `namespace "${namespace}"` : 'any namespace')));
  return rows.some(unhealthy) ? 1 : 0;
}
