import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSnapshotSource, listBackups, runBackup, type BackupStore } from '@kdc/backup-envelope';
import { OpenBaoClient, type TransitClient } from '@kdc/shared';
import {
  backupAccess,
  backupStore,
  backupToken,
  cliEnv,
  runBackupCli,
  startCuttableProxy,
  uniqueName,
  type BackupAccess,
  type CuttableProxy,
} from '../src/backup-harness.ts';
import { platform } from './helpers.ts';

/** A synthetic etcd-style snapshot: a database of `mib` MiB followed by its SHA-256. */
function syntheticSnapshot(path: string, mib: number): void {
  const fd = openSync(path, 'w', 0o600);
  const hash = createHash('sha256');
  for (let i = 0; i < mib; i++) {
    const chunk = randomBytes(1 << 20);
    hash.update(chunk);
    writeSync(fd, chunk);
  }
  writeSync(fd, hash.digest());
  closeSync(fd);
}

describe('S3 outage during the upload', () => {
  let dir: string;
  let access: BackupAccess;
  let store: BackupStore;
  let transit: TransitClient;
  let snapshot: string;
  const proxies: CuttableProxy[] = [];

  beforeAll(async () => {
    const p = platform();
    dir = join(p.dir, uniqueName('backup-outage'));
    mkdirSync(dir, { recursive: true });
    access = await backupAccess(p, dir, 'bk-out');
    store = backupStore(p);
    transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();
    snapshot = join(dir, 'synthetic.db');
    syntheticSnapshot(snapshot, 40);
  });
  afterAll(async () => {
    for (const proxy of proxies) await proxy.close();
  });

  const proxyToS3 = async () => {
    const target = new URL(platform().s3.endpoint);
    const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port) });
    proxies.push(proxy);
    return proxy;
  };

  const nothingLeft = async (cluster: string) => {
    const inventory = await listBackups(store, cluster);
    expect(inventory.backups).toEqual([]);
    expect(inventory.incomplete).toEqual([]);
    expect(await store.list(`${cluster}/`)).toEqual([]);
    expect(await store.multipartUploads(`${cluster}/`)).toEqual([]);
  };

  it('S3 goes away mid-upload and comes back: the job fails cleanly, aborts the multipart upload, lists nothing', async () => {
    const p = platform();
    const proxy = await proxyToS3();
    const cut = proxy.cutAfter(12 * 1024 * 1024, 5_000);
    const run = await runBackupCli(
      [
        'backup',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--transit-key',
        access.transitKey,
        '--snapshot-file',
        snapshot,
        '--part-size',
        '5Mi',
        '--upload-concurrency',
        '2',
        '--auth-method',
        'kubernetes',
        '--token-file',
        access.tokenFile,
      ],
      cliEnv(p, dir, { S3_ENDPOINT: proxy.url }),
    );
    await cut;
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toBe(''); // no result line: there is no backup
    expect(run.stderr).toMatch(
      /kdc-backup backup: IO_FAILED: .*S3 upload s3:\/\/kdc-backups\/.*snapshot\.db\.enc failed/,
    );
    expect(run.stderr).toContain('aborted the failed multipart upload');
    await nothingLeft(access.cluster);
  });

  it('S3 stays away: the job gives up in bounded time; the next run sweeps the orphaned multipart upload', async () => {
    const proxy = await proxyToS3();
    const cluster = access.cluster;
    const cut = proxy.cutAfter(12 * 1024 * 1024);
    const started = Date.now();
    const error = await runBackup({
      store: backupStore(platform(), proxy.url, 2),
      transit,
      transitKey: access.transitKey,
      cluster,
      namespace: access.namespace,
      source: fileSnapshotSource(snapshot),
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
      abortRetryMs: 2_000,
    }).catch((e: { code: string; message: string }) => e);
    await cut;
    expect(error).toMatchObject({ code: 'IO_FAILED' });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect((await listBackups(store, cluster)).backups).toEqual([]);
    const orphans = await store.multipartUploads(`${cluster}/`);
    expect(orphans.length).toBe(1);

    // The next run (S3 healthy) aborts uploads older than its stale age before it starts.
    const next = await runBackup({
      store,
      transit,
      transitKey: access.transitKey,
      cluster,
      namespace: access.namespace,
      source: fileSnapshotSource(snapshot),
      partSize: 5 * 1024 * 1024,
      staleUploadAgeMs: 0,
      now: new Date(Date.now() + 2_000),
    });
    expect(await store.multipartUploads(`${cluster}/`)).toEqual([]);
    expect((await listBackups(store, cluster)).backups.map((b) => b.key)).toEqual([next.key]);
  });
});
