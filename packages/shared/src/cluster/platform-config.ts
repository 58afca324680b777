// Platform prerequisites for encryption (SPEC 7): environment first, then the `master-config`
// Secret. A missing prerequisite is an EncryptionConfigError for every cluster that asks for
// encryption, never a crash and never a silent fallback to plaintext.

export interface PlatformConfig {
  /** The plugin sidecar; its `prepare-socket-dir` is also the socket directory's init container. */
  kmsPluginImage: string;
  openBaoUrl: string;
  openBaoCaBundle?: string;
  s3Endpoint?: string;
  /**
   * S3 endpoints a tenant may name in spec.backup.s3Endpoint (S3_ENDPOINT_ALLOWLIST, origins
   * separated by commas or spaces), besides s3Endpoint itself. k8-manager reads a tenant's bucket
   * only there: a tenant's own endpoint could answer without end.
   */
  s3EndpointAllowlist?: string[];
  /** The kdc-backup job image (KDC_BACKUP_IMAGE); without it no backup CronJob is made (BackupReady says so). */
  backupImage?: string;
}

export interface Prerequisite {
  reason: 'OpenBaoDisabled' | 'OpenBaoURLMissing' | 'KMSPluginImageMissing' | 'OpenBaoURLInvalid';
  message: string;
}

export type PlatformConfigResult = { ok: true; config: PlatformConfig } | { ok: false; missing: Prerequisite[] };

const truthy = (value: string | undefined) =>
  value !== undefined && ['true', '1', 'yes'].includes(value.trim().toLowerCase());

export function resolvePlatformConfig(
  env: Record<string, string | undefined>,
  masterConfig: Record<string, string> = {},
): PlatformConfigResult {
  const missing: Prerequisite[] = [];
  // OPENBAO_ENABLED is the chart's openBao.enabled; without it, the master-config decides.
  const openBaoEnabled =
    env.OPENBAO_ENABLED !== undefined
      ? truthy(env.OPENBAO_ENABLED)
      : env.OPENBAO_URL
        ? true
        : masterConfig.enable_openbao === undefined
          ? true
          : truthy(masterConfig.enable_openbao);
  const openBaoUrl = (env.OPENBAO_URL || masterConfig.openbao_url || '').trim();
  const kmsPluginImage = (env.KMS_PLUGIN_IMAGE ?? '').trim();
  if (!openBaoEnabled) {
    missing.push({
      reason: 'OpenBaoDisabled',
      message:
        'OpenBao is disabled on this platform (chart value openBao.enabled=false, or master-config enable_openbao=false): ask the platform operator to enable it',
    });
  } else if (!openBaoUrl) {
    missing.push({
      reason: 'OpenBaoURLMissing',
      message:
        'no OpenBao URL is configured: set OPENBAO_URL on k8-manager or openbao_url in master-config (chart value k8Manager.openBaoUrl)',
    });
  } else if (!/^https?:\/\/[^\s/]+/.test(openBaoUrl)) {
    missing.push({
      reason: 'OpenBaoURLInvalid',
      message: `OpenBao URL "${openBaoUrl}" is not an http(s) URL: fix OPENBAO_URL or master-config openbao_url`,
    });
  }
  if (!kmsPluginImage) {
    missing.push({
      reason: 'KMSPluginImageMissing',
      message:
        'no KMS plugin image is configured: set KMS_PLUGIN_IMAGE on k8-manager (chart value k8Manager.kmsPluginImage)',
    });
  }
  if (missing.length) return { ok: false, missing };
  const caBundle = env.OPENBAO_CA_BUNDLE ?? masterConfig.openbao_ca_bundle;
  return {
    ok: true,
    config: {
      kmsPluginImage,
      openBaoUrl,
      ...(caBundle ? { openBaoCaBundle: caBundle } : {}),
      ...(env.S3_ENDPOINT ? { s3Endpoint: env.S3_ENDPOINT } : {}),
      ...(env.S3_ENDPOINT_ALLOWLIST?.trim()
        ? { s3EndpointAllowlist: env.S3_ENDPOINT_ALLOWLIST.split(/[\s,]+/).filter(Boolean) }
        : {}),
      ...(env.KDC_BACKUP_IMAGE?.trim() ? { backupImage: env.KDC_BACKUP_IMAGE.trim() } : {}),
    },
  };
}
