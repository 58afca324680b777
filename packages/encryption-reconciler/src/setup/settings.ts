// encryption-reconciler's settings, read from the environment the chart sets (docs/configuration.md):
// OPENBAO_URL, OPENBAO_TOKEN_FILE (re-read: rotate the Secret) or OPENBAO_TOKEN, OPENBAO_TOKEN_SECRET (named
// in conditions), OPENBAO_CA_BUNDLE (PEM file), KMS_PLUGIN_IMAGE, KMSKEY_DELETION_COUNTDOWN, RESYNC_PERIOD,
// WORKERS, CLUSTER_SELECTOR (label selector for KdcClusters), CONTROLLERS (default kmskey,kdccluster-openbao,
// cleanup), KMSKEY_SHARD (<index>/<count>: this release's share of the KMSKeys, kmskey/shard.ts),
// KMSKEY_MIN_ROTATION (shortest rotation interval, default 1h), KMSKEY_MIN_ROTATION_ETCD (purpose
// etcd, default 7d) and OPENBAO_DRIFT_CHECK_PERIOD (how often what we wrote in OpenBao is read back
// when nothing changed, default 1h; 0s: on every reconcile).
import { readFileSync } from 'node:fs';
import { EnvSettings } from '@kdc/shared';
import { parseKmsKeyShard, type KmsKeyShard } from '../kmskey/shard.ts';

export const CONTROLLERS = ['kmskey', 'kdccluster-openbao', 'cleanup'] as const;

export interface ReconcilerSettings {
  openBao: { endpoint: string; caBundle?: string; timeoutMs: number };
  deletionCountdownSeconds: number;
  resyncMs: number;
  driftCheckMs: number;
  workers: number;
  clusterSelector?: string;
  controllers: Set<string>;
  kmsKeyShard: KmsKeyShard;
  rotationFloorSeconds: (purpose: string) => number;
}

export function reconcilerSettings(env: Record<string, string | undefined>): ReconcilerSettings {
  const settings = new EnvSettings(env);
  const caFile = settings.optional('OPENBAO_CA_BUNDLE');
  const floor = {
    etcd: settings.durationSeconds('KMSKEY_MIN_ROTATION_ETCD', '7d'),
    other: settings.durationSeconds('KMSKEY_MIN_ROTATION', '1h'),
  };
  const controllers = new Set(settings.list('CONTROLLERS', CONTROLLERS.join(',')));
  const unknown = [...controllers].filter((c) => !(CONTROLLERS as readonly string[]).includes(c));
  if (unknown.length)
    throw new Error(`CONTROLLERS: ${unknown.join(', ')} unknown; use some of ${CONTROLLERS.join(', ')}`);
  return {
    openBao: {
      endpoint: settings.required('OPENBAO_URL', 'point it at OpenBao, e.g. https://openbao.openbao.svc:8200'),
      caBundle: caFile ? readFileSync(caFile, 'utf8') : undefined,
      timeoutMs: 10_000,
    },
    deletionCountdownSeconds: settings.durationSeconds('KMSKEY_DELETION_COUNTDOWN', '30d'),
    resyncMs: settings.durationMs('RESYNC_PERIOD', '10m'),
    driftCheckMs: settings.durationMs('OPENBAO_DRIFT_CHECK_PERIOD', '1h', 0),
    workers: settings.positiveInt('WORKERS', 4),
    clusterSelector: settings.labelSelector('CLUSTER_SELECTOR')?.text,
    controllers,
    kmsKeyShard: parseKmsKeyShard(settings.optional('KMSKEY_SHARD')),
    rotationFloorSeconds: (purpose) => (purpose === 'etcd' ? floor.etcd : floor.other),
  };
}
