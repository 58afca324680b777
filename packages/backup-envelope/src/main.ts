#!/usr/bin/env node
// kdc-backup: the backup Job / CronJob entry point (backup, restore, rewrap, list; data-dir, the
// file steps around a restore).
// Results go to stdout (JSON, or a table for `list`); logs go to stderr. Never logs tokens,
// data keys, plaintext or ciphertext. Exit 0 done, 1 failed, 2 bad flags.
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '@kdc/shared/log';
import { exitOnVersionFlag } from '@kdc/shared/version';
import { OpenBaoClient } from '@kdc/shared/openbao';
import { openBaoSession, type Session } from './auth.ts';
import { runBackup } from './backup.ts';
import { parseCli, helpText, type CliConfig, type OpenBaoConfig } from './config.ts';
import { DATA_DIR_HELP, parseDataDirArgs, runDataDirStep } from './data-dir.ts';
import { BackupError, describeError } from './errors.ts';
import { applyRetention, listBackups, minKeyVersion } from './inventory.ts';
import { restoreBackup } from './restore.ts';
import { rewrapBackups } from './rewrap.ts';
import { etcdSnapshotSource, fileSnapshotSource } from './source.ts';
import { BackupStore } from './store.ts';
import { latestVerified } from './verify.ts';

function readConfigFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new BackupError('IO_FAILED', `${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

const print = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function openBao(config: OpenBaoConfig): Promise<Session> {
  const base = new OpenBaoClient({
    endpoint: config.addr,
    ...(config.caFile ? { caBundle: readConfigFile(config.caFile, '--openbao-ca-file') } : {}),
    ...(config.namespace ? { namespace: config.namespace } : {}),
    timeoutMs: 30_000,
  });
  return openBaoSession(base, config.auth);
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

async function run(config: CliConfig, logger: Logger, signal: AbortSignal): Promise<number> {
  const store = BackupStore.fromSettings({
    ...config.s3,
    ...(config.s3.caFile ? { caPem: readConfigFile(config.s3.caFile, '--s3-ca-file') } : {}),
  });
  let session: Session | undefined;
  try {
    if (config.command === 'list') {
      const inventory = await listBackups(store, config.cluster);
      for (const prefix of inventory.incomplete)
        logger.warn({ key: store.url(prefix) }, 'prefix without metadata.json (an unfinished upload): not a backup');
      for (const bad of inventory.invalid)
        logger.warn({ key: store.url(bad.key), err: bad.error }, 'unreadable metadata.json');
      const rows = inventory.backups.map((b) => ({
        key: b.key,
        kind: b.kind,
        createdAt: b.createdAt.toISOString(),
        schemaVersion: b.schemaVersion ?? null,
        transitKey: b.transitKey ?? null,
        transitKeyVersion: b.transitKeyVersion ?? null,
        plaintextSize: b.plaintextSize ?? null,
        storedSize: b.storedSize ?? null,
      }));
      if (config.json) {
        for (const row of rows) print(row);
        print({
          summary: true,
          backups: rows.length,
          minKeyVersion: minKeyVersion(inventory.backups),
          incomplete: inventory.incomplete.length,
          invalid: inventory.invalid.length,
        });
      } else {
        process.stdout.write(
          formatTable([
            ['KEY', 'CREATED', 'SCHEMA', 'TRANSIT KEY', 'VERSION', 'PLAINTEXT', 'STORED'],
            ...rows.map((r) => [
              r.key,
              r.createdAt,
              String(r.schemaVersion ?? r.kind),
              r.transitKey ?? '-',
              r.transitKeyVersion === null ? '-' : `v${r.transitKeyVersion}`,
              String(r.plaintextSize ?? '-'),
              String(r.storedSize ?? '-'),
            ]),
          ]),
        );
        process.stdout.write(
          `${rows.length} backup(s); lowest key version still needed: ${minKeyVersion(inventory.backups) ?? 'none'}\n`,
        );
      }
      return 0;
    }

    session = await openBao(config.openbao);
    const transit = session.client.transit(config.openbao.transitMount);

    if (config.command === 'backup') {
      const source =
        config.source.kind === 'file'
          ? fileSnapshotSource(config.source.path)
          : etcdSnapshotSource({
              endpoint: config.source.endpoint,
              ...(config.source.caFile ? { caPem: readConfigFile(config.source.caFile, '--etcd-ca-file') } : {}),
              ...(config.source.certFile
                ? { certPem: readConfigFile(config.source.certFile, '--etcd-cert-file') }
                : {}),
              ...(config.source.keyFile ? { keyPem: readConfigFile(config.source.keyFile, '--etcd-key-file') } : {}),
            });
      const result = await runBackup({
        store,
        transit,
        transitKey: config.transitKey,
        cluster: config.cluster,
        namespace: config.namespace,
        source,
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
        deleted = await applyRetention(store, config.cluster, {
          retentionDays: config.retentionDays,
          now: new Date(),
          keep: result.key,
        });
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

    if (config.command === 'restore') {
      let key = config.backup;
      if (key === 'latest') {
        const { backups } = await listBackups(store, config.cluster);
        if (!backups.length)
          throw new BackupError(
            'NOT_FOUND',
            `no backups of cluster ${config.cluster} in s3://${store.bucket}/${config.cluster}/`,
          );
        key = (
          await latestVerified(
            store,
            transit,
            backups,
            {
              cluster: config.cluster,
              namespace: config.namespace,
              ...(config.transitKey ? { transitKey: config.transitKey } : {}),
            },
            logger,
          )
        ).key;
        logger.info({ key: store.url(key) }, 'restoring the latest backup');
      }
      const result = await restoreBackup({
        store,
        transit,
        cluster: config.cluster,
        namespace: config.namespace,
        key,
        ...(config.transitKey ? { expectedTransitKey: config.transitKey } : {}),
        allowUnauthenticated: config.allowUnauthenticated,
        destination: config.destination,
        logger,
        signal,
      });
      print(result);
      return 0;
    }

    const result = await rewrapBackups({
      store,
      transit,
      cluster: config.cluster,
      ...(config.transitKey ? { transitKey: config.transitKey } : {}),
      dryRun: config.dryRun,
      logger,
    });
    for (const outcome of result.outcomes) print(outcome);
    print({
      summary: true,
      backups: result.outcomes.length,
      rewrapped: result.outcomes.filter((o) => o.status === 'rewrapped').length,
      failed: result.failed,
      latestVersion: result.latestVersion,
    });
    return result.failed ? 1 : 0;
  } finally {
    await session?.close();
    store.destroy();
  }
}

const argv = process.argv.slice(2);
exitOnVersionFlag('kdc-backup', argv);
if (argv[0] === 'data-dir') {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DATA_DIR_HELP);
    process.exit(0);
  }
  const step = parseDataDirArgs(argv.slice(1));
  if (!step.ok) {
    process.stderr.write(`kdc-backup: ${step.error}\n`);
    process.exit(2);
  }
  try {
    process.stderr.write(`kdc-backup data-dir ${step.step.step}: ${runDataDirStep(step.step)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`kdc-backup data-dir ${step.step.step}: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(helpText());
  process.exit(0);
}
const parsed = parseCli(argv, process.env);
if (!parsed.ok) {
  for (const error of parsed.errors) process.stderr.write(`kdc-backup: ${error}\n`);
  process.exit(2);
}
const logger = createLogger('kdc-backup', { level: parsed.config.logLevel }, process.stderr);
const controller = new AbortController();
for (const name of ['SIGTERM', 'SIGINT'] as const) {
  process.once(name, () => {
    logger.warn({ signal: name }, 'cancelling');
    controller.abort();
  });
}
try {
  process.exitCode = await run(parsed.config, logger, controller.signal);
} catch (error) {
  const code = error instanceof BackupError ? error.code : 'FAILED';
  logger.error({ code, err: describeError(error) }, `${parsed.config.command} failed`);
  process.stderr.write(`kdc-backup ${parsed.config.command}: ${describeError(error)}\n`);
  process.exitCode = 1;
}
// Keep-alive sockets and timers must not keep a finished Job's pod running.
process.exit(process.exitCode);
