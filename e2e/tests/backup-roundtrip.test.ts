import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_OBJECTS, parseMetadata, type MetadataV2 } from '@kdc/backup-envelope';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import {
  backupAccess,
  backupStore,
  cliEnv,
  runBackupCli,
  uniqueName,
  type BackupAccess,
} from '../src/backup-harness.ts';
import { startEtcd, type EtcdServer } from '../src/etcd.ts';
import { startKubeApiserver, type KubeApiserver } from '../src/kube-apiserver.ts';
import { platform } from './helpers.ts';

const SECRETS = 2_000;
const MARKER = `plaintext-marker-${randomBytes(6).toString('hex')}`;

async function pool(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await op(next++);
    }),
  );
}

const digest = (data: Record<string, string>) =>
  createHash('sha256')
    .update(JSON.stringify(Object.entries(data).sort()))
    .digest('hex');

async function ledgerOf(kube: KubeClient, namespace: string): Promise<Map<string, string>> {
  const ledger = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await kube.list<{ metadata: { name: string }; data?: Record<string, string> }>(
      at(RESOURCES.secret, namespace),
      { limit: 500, ...(token ? { continue: token } : {}) },
    );
    for (const s of page.items) ledger.set(s.metadata.name, digest(s.data ?? {}));
    token = (page.metadata as { continue?: string } | undefined)?.continue || undefined;
  } while (token);
  return ledger;
}

describe('backup round trip: tenant apiserver -> etcd snapshot -> S3 -> restore -> fresh etcd -> tenant apiserver', () => {
  const servers: { stop(): Promise<void> }[] = [];
  let access: BackupAccess;
  let dir: string;
  let prefix: string;
  let tenant: KubeApiserver;

  beforeAll(async () => {
    const p = platform();
    dir = join(p.dir, uniqueName('backup-rt'));
    mkdirSync(dir, { recursive: true });
    access = await backupAccess(p, dir, 'bk-rt');
    prefix = `/${access.cluster}`;
    tenant = await startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: prefix,
      name: `${access.cluster}-apiserver`,
    });
    servers.push(tenant);
  });
  afterAll(async () => {
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
  });

  it(`${SECRETS} Secrets read back equal, via the job CLI with Kubernetes auth as backup-<cluster>`, async () => {
    const p = platform();
    const kube = KubeClient.fromFile(tenant.kubeconfig);
    await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ledger' } });
    const written = new Map<string, string>();
    await pool(SECRETS, 32, async (i) => {
      const data = { value: Buffer.from(`${MARKER}-${i}-${randomBytes(24).toString('hex')}`).toString('base64') };
      const name = `s-${String(i).padStart(5, '0')}`;
      await kube.create(at(RESOURCES.secret, 'ledger'), { apiVersion: 'v1', kind: 'Secret', metadata: { name }, data });
      written.set(name, digest(data));
    });
    expect(written.size).toBe(SECRETS);

    const env = cliEnv(p, dir);
    const auth = ['--auth-method', 'kubernetes', '--token-file', access.tokenFile];
    const backup = await runBackupCli(
      [
        'backup',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--transit-key',
        access.transitKey,
        '--etcd-endpoint',
        p.etcd.endpoint,
        '--segment-size',
        '256Ki',
        '--part-size',
        '5Mi',
        ...auth,
      ],
      env,
    );
    expect(backup.code, backup.stderr).toBe(0);
    const result = backup.json.at(-1)!;
    expect(result).toMatchObject({
      key: expect.stringMatching(new RegExp(`^${access.cluster}/${access.cluster}-\\d{8}T\\d{6}Z/$`)),
      transitKey: access.transitKey,
      transitKeyVersion: 1,
    });
    // The job logs progress and never a token, a data key or key material.
    expect(backup.stderr).toContain('backup complete');
    expect(backup.stderr).not.toMatch(/vault:v\d+:|hvs\.|s\.[A-Za-z0-9]{20}/);

    // What landed in S3: three objects, metadata consistent, no plaintext anywhere.
    const store = backupStore(p);
    const key = result.key as string;
    const objects = (await store.list(key)).map((o) => o.key.slice(key.length)).sort();
    expect(objects).toEqual([ENVELOPE_OBJECTS.wrappedDek, ENVELOPE_OBJECTS.metadata, ENVELOPE_OBJECTS.snapshot].sort());
    const metadata = parseMetadata((await store.getText(key + ENVELOPE_OBJECTS.metadata))!.text) as MetadataV2;
    expect(metadata).toMatchObject({
      schemaVersion: 2,
      source: { cluster: access.cluster, namespace: access.namespace },
      transitKeyVersion: 1,
      segmentSize: 256 * 1024,
    });
    expect((await store.getText(key + ENVELOPE_OBJECTS.wrappedDek))!.text.trim()).toBe(metadata.wrappedDek);
    const snapshot = await store.getStream(key + ENVELOPE_OBJECTS.snapshot);
    const chunks: Buffer[] = [];
    for await (const c of snapshot!.body) chunks.push(c as Buffer);
    const encrypted = Buffer.concat(chunks);
    expect(encrypted.length).toBe(metadata.ciphertextSize);
    expect(encrypted.includes(Buffer.from(MARKER))).toBe(false);
    expect(encrypted.includes(Buffer.from(MARKER).toString('base64').slice(0, 12))).toBe(false);

    const list = await runBackupCli(['list', '--cluster', access.cluster, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json).toEqual([
      expect.objectContaining({
        key,
        schemaVersion: 2,
        transitKeyVersion: 1,
        plaintextSize: metadata.plaintextSize,
        storedSize: metadata.ciphertextSize,
      }),
      expect.objectContaining({ summary: true, backups: 1, minKeyVersion: 1 }),
    ]);

    // Restore into a fresh data dir, start an etcd on it and a tenant apiserver on that.
    const restoreParent = join(dir, 'restored');
    const dataDir = join(restoreParent, 'etcd-data');
    // --bump-revision (with --mark-compacted) is what a platform restore uses so clients' watches resync.
    const restore = await runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--backup',
        'latest',
        '--data-dir',
        dataDir,
        '--transit-key',
        access.transitKey,
        '--bump-revision',
        '1000000',
        ...auth,
      ],
      env,
    );
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json.at(-1)).toMatchObject({
      key,
      schemaVersion: 2,
      plaintextSize: metadata.plaintextSize,
      sha256: metadata.etcdSnapshotSha256,
    });
    expect(readdirSync(restoreParent)).toEqual(['etcd-data']); // no temp files left behind

    const etcd: EtcdServer = await startEtcd({
      binary: p.binaries.etcd,
      dir,
      logDir: p.logDir,
      name: `${access.cluster}-restored-etcd`,
      dataDir,
    });
    servers.push(etcd);
    const range = await fetch(`${etcd.endpoint}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('/').toString('base64'), count_only: true }),
    });
    expect(Number(((await range.json()) as { header: { revision: string } }).header.revision)).toBeGreaterThan(
      1_000_000,
    );
    const restored = await startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir: join(dir, 'restored-apiserver'),
      logDir: p.logDir,
      etcdEndpoint: etcd.endpoint,
      etcdPrefix: prefix,
      name: `${access.cluster}-restored-apiserver`,
    });
    servers.push(restored);
    const readBack = await ledgerOf(KubeClient.fromFile(restored.kubeconfig), 'ledger');
    expect(readBack.size).toBe(SECRETS);
    const mismatched = [...written].filter(([name, sum]) => readBack.get(name) !== sum);
    expect(mismatched).toEqual([]);
  }, 300_000);
});
