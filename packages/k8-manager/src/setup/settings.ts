// k8-manager's settings, read from the environment the chart sets (docs/configuration.md lists them):
// KMS_PLUGIN_IMAGE, OPENBAO_ENABLED, OPENBAO_URL, OPENBAO_CA_BUNDLE (PEM or a file with it), S3_ENDPOINT,
// KDC_BACKUP_IMAGE (read by the reconciler from `env`), RESYNC_PERIOD, OBSERVE_PERIOD (how often a Ready
// tenant is looked at), WORKERS, CLUSTER_SELECTOR (shard the clusters), MIGRATION_PAGE_SIZE (objects
// re-written per step) and MIGRATION_RATE (writes per second into one tenant apiserver).
import { readFileSync } from 'node:fs';
import { EnvSettings, type LabelSelector } from '@kdc/shared';

export interface K8ManagerSettings {
  /** The environment with OPENBAO_CA_BUNDLE resolved to the PEM itself. */
  env: Record<string, string | undefined>;
  resyncMs: number;
  observePeriodMs: number;
  workers: number;
  /** CLUSTER_SELECTOR: the KdcClusters this release reconciles, and (by the labels it copies) their TenantControlPlanes. */
  clusterSelector?: LabelSelector;
  migration: { pageSize: number; ratePerSecond: number };
}

export function k8ManagerSettings(processEnv: Record<string, string | undefined>): K8ManagerSettings {
  const settings = new EnvSettings(processEnv);
  const ca = settings.optional('OPENBAO_CA_BUNDLE');
  return {
    env: {
      ...processEnv,
      OPENBAO_CA_BUNDLE: ca && !ca.startsWith('-----BEGIN') ? readFileSync(ca, 'utf8') : ca,
    },
    resyncMs: settings.durationMs('RESYNC_PERIOD', '10m'),
    observePeriodMs: settings.durationMs('OBSERVE_PERIOD', '30s'),
    workers: settings.positiveInt('WORKERS', 4),
    clusterSelector: settings.labelSelector('CLUSTER_SELECTOR'),
    migration: {
      pageSize: settings.positiveInt('MIGRATION_PAGE_SIZE', 200),
      ratePerSecond: settings.positiveInt('MIGRATION_RATE', 100),
    },
  };
}
