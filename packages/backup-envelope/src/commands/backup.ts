// `kdc-backup backup`: snapshot (from etcd or a file), encrypt under a fresh Transit data key,
// upload, then apply retention; prints one JSON line with what was written.
import type { TransitClient } from '@kdc/shared/openbao';
import { runBackup } from '../backup.ts';
import type { CliConfig } from '../config.ts';
import { applyRetention } from '../inventory.ts';
import { etcdSnapshotSource, fileSnapshotSource } from '../source.ts';
import { print, readConfigFile, type CommandContext } from './context.ts';

type BackupConfig = Extract<CliConfig, { command: 'backup' }>;

function snapshotSource(source: BackupConfig['source']) {
  if (source.kind === 'file') return fileSnapshotSource(source.path);
  return etcdSnapshotSource({
    endpoint: source.endpoint,
    ...(source.caFile ? { caPem: readConfigFile(source.caFile, '--etcd-ca-file') } : {}),
    ...(source.certFile ? { certPem: readConfigFile(source.certFile, '--etcd-cert-file') } : {}),
    ...(source.keyFile ? { keyPem: readConfigFile(source.keyFile, '--etcd-key-file') } : {}),
  });
}

export async function backupCommand(
  config: BackupConfig,
  transit: TransitClient,
  ctx: CommandContext,
): Promise<number> {
  const { store, logger, signal } = ctx;
  const result = await runBackup({
    store,
    transit,
    transitKey: config.transitKey,
    cluster: config.cluster,
    namespace: config.namespace,
    source: snapshotSource(config.source),
    segmentSize: config.segmentSize,
    partSize: config.partSize,
    queueSize: config.queueSize,
    staleUploadAgeMs: config.staleUploadAgeMs,
    logger,
    signal,
  });
  const m = result.metadata;
  let deleted: string[] = [];
  if (config.retentionDays !== undefined) {
    // The backup just written is the newest authentic one: it is what retention keeps.
    const retention = { retentionDays: config.retentionDays, now: new Date(), keep: result.key };
    deleted = await applyRetention(store, config.cluster, retention);
    if (deleted.length) logger.info({ deleted }, 'retention: deleted old backups');
  }
  print({
    key: result.key,
    bucket: store.bucket,
    createdAt: m.createdAt,
    transitKey: m.transitKey,
    transitKeyVersion: m.transitKeyVersion,
    plaintextSize: m.plaintextSize,
    ciphertextSize: m.ciphertextSize,
    etcdSnapshotSha256: m.etcdSnapshotSha256,
    durationMs: result.durationMs,
    deleted,
  });
  return 0;
}
