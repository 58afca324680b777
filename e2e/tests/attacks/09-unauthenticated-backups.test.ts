import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_OBJECTS,
  backupsToDelete,
  fileSnapshotSource,
  kdfInfo,
  listBackups,
  parseMetadata,
  restoreBackup,
  runBackup,
  serializeMetadata,
  type BackupStore,
  type MetadataV2,
} from '@kdc/backup-envelope';
import { OpenBaoClient } from '@kdc/shared';
import {
  backupAccess,
  backupStore,
  backupToken,
  cliEnv,
  runBackupCli,
  uniqueName,
  type BackupAccess,
} from '../../src/backup-harness.ts';
import { conditionOf, restoreState, startRestoreFixture, TCP, type RestoreFixture } from '../../src/restore-fixture.ts';
import { STATEFULSET } from '../../src/controllers/statefulsets.ts';
import { openBaoRoot, platform, shardControllers, unique } from '../helpers.ts';

// Finding 9: anyone who can write to the bucket can add `<cluster>/<cluster>-99991231T235959Z.db`
// (a plaintext snapshot of their choosing) or an envelope whose metadata.json claims a far-future
// createdAt. Ordered by what the files claim, the forgery became "latest" (restored by
// `--backup latest`, shown as latestBackupKey, picked by `backups restore latest`) and retention
// never deleted it. Unauthenticated files must never be restored into an encrypted cluster unless
// a person names one and confirms; "latest" and retention must order by authenticated data only.

const FORGED_DB_STAMP = '99991231T235959Z';
const FORGED_ENVELOPE_STAMP = '99991230T000000Z';

/** What a bucket writer adds next to a cluster's backups. */
async function forge(
  store: BackupStore,
  cluster: string,
  real: { key: string; metadata: MetadataV2 },
  attackerBytes: Buffer,
): Promise<{ db: string; envelope: string }> {
  const db = `${cluster}/${cluster}-${FORGED_DB_STAMP}.db`;
  await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: db, Body: attackerBytes }));
  // A real backup's objects under a far-future prefix, metadata.json re-dated consistently (kdf.info included).
  const envelope = `${cluster}/${cluster}-${FORGED_ENVELOPE_STAMP}/`;
  const createdAt = '9999-12-30T00:00:00.000Z';
  const forged: MetadataV2 = { ...real.metadata, createdAt };
  forged.kdf = {
    ...forged.kdf,
    info: kdfInfo({
      schemaVersion: 2,
      algorithm: forged.algorithm,
      transitKey: forged.transitKey,
      createdAt,
      source: forged.source,
      segmentSize: forged.segmentSize,
    }),
  };
  expect(() => parseMetadata(serializeMetadata(forged), envelope)).not.toThrow();
  const snapshot = await store.getStream(real.key + ENVELOPE_OBJECTS.snapshot);
  const chunks: Buffer[] = [];
  for await (const chunk of snapshot!.body) chunks.push(chunk as Buffer);
  await store.client.send(
    new PutObjectCommand({
      Bucket: store.bucket,
      Key: envelope + ENVELOPE_OBJECTS.snapshot,
      Body: Buffer.concat(chunks),
    }),
  );
  await store.putText(envelope + ENVELOPE_OBJECTS.wrappedDek, `${forged.wrappedDek}\n`, 'text/plain');
  await store.putText(envelope + ENVELOPE_OBJECTS.metadata, serializeMetadata(forged), 'application/json');
  return { db, envelope };
}

describe('attack 09: a bucket writer plants backups that claim to be the newest (the job)', () => {
  const p = platform();
  const dir = join(p.dir, uniqueName('a09'));
  let access: BackupAccess;
  let store: BackupStore;
  let real: { key: string; metadata: MetadataV2 }[];
  let forged: { db: string; envelope: string };
  const attackerBytes = Buffer.concat([Buffer.from('ATTACKER-CHOSEN-ETCD-DATABASE '), randomBytes(4096)]);

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    access = await backupAccess(p, dir, 'a09');
    store = backupStore(p);
    const transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();
    real = [];
    for (const hoursAgo of [2, 1]) {
      const file = join(dir, `real-${hoursAgo}.db`);
      writeFileSync(file, randomBytes(64 * 1024));
      const r = await runBackup({
        store,
        transit,
        transitKey: access.transitKey,
        cluster: access.cluster,
        namespace: access.namespace,
        source: fileSnapshotSource(file),
        now: new Date(Date.now() - hoursAgo * 3_600_000),
      });
      real.push({ key: r.key, metadata: r.metadata });
    }
    forged = await forge(store, access.cluster, real[1]!, attackerBytes);
  }, 120_000);
  afterAll(() => store?.destroy());

  const restore = (args: string[], out: string) =>
    runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--output',
        out,
        '--auth-method',
        'kubernetes',
        '--token-file',
        access.tokenFile,
        '--transit-key',
        access.transitKey,
        ...args,
      ],
      cliEnv(p, dir, { KDC_NAMESPACE: access.namespace }),
    );

  it('--backup latest restores the newest authenticated backup, not a planted file', async () => {
    const out = join(dir, 'latest', 'snapshot.db');
    const run = await restore(['--backup', 'latest'], out);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json.at(-1)).toMatchObject({ key: real[1]!.key, sha256: real[1]!.metadata.etcdSnapshotSha256 });
    expect(readFileSync(out).includes('ATTACKER-CHOSEN')).toBe(false);
  });

  it('a plaintext file is restored only when a person names it and confirms', async () => {
    const refusedOut = join(dir, 'refused', 'snapshot.db');
    const refused = await restore(['--backup', forged.db], refusedOut);
    expect(refused.code, refused.stdout).toBe(1);
    expect(refused.stderr).toMatch(/UNAUTHENTICATED_BACKUP: .*--allow-unauthenticated/);
    const confirmedOut = join(dir, 'confirmed', 'snapshot.db');
    const confirmed = await restore(['--backup', forged.db, '--allow-unauthenticated'], confirmedOut);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(createHash('sha256').update(readFileSync(confirmedOut)).digest('hex')).toBe(
      createHash('sha256').update(attackerBytes).digest('hex'),
    );
  });

  it('retention ages planted files by what the server recorded, and keeps the backup it just wrote', async () => {
    const { backups } = await listBackups(store, access.cluster);
    expect(backups.map((b) => b.key)).toEqual(
      expect.arrayContaining([forged.db, forged.envelope, ...real.map((r) => r.key)]),
    );
    // Three years on, with 7 days of retention, after a run that wrote real[1]:
    const later = new Date(Date.now() + 3 * 365 * 86_400_000);
    const doomed = backupsToDelete(backups, 7, later, real[1]!.key).map((b) => b.key);
    expect(doomed).toEqual(expect.arrayContaining([forged.db, forged.envelope, real[0]!.key]));
    expect(doomed).not.toContain(real[1]!.key);
    // Without the key of the run, the newest backup ordered by authenticated time is kept: never a plaintext file.
    const kept = backups.filter((b) => !backupsToDelete(backups, 7, later).includes(b)).map((b) => b.key);
    expect(kept).toHaveLength(1);
    expect(kept[0]).not.toBe(forged.db);
  });
});

describe('attack 09: a bucket writer plants backups (k8-manager)', () => {
  let f: RestoreFixture;
  let store: BackupStore;
  let forged: { db: string; envelope: string };
  let plaintextDb: string;

  beforeAll(async () => {
    f = await startRestoreFixture(platform(), {
      id: unique('a09k'),
      prefix: 'tenant',
      controllers: (id, env) => shardControllers(id, env),
    });
    store = backupStore(platform());
    const first = await f.backupNow();
    const metadata = parseMetadata((await store.getText(first + ENVELOPE_OBJECTS.metadata))!.text, first) as MetadataV2;
    forged = await forge(store, f.cluster, { key: first, metadata }, Buffer.from('ATTACKER-CHOSEN-ETCD-DATABASE'));
    // A real plaintext snapshot of this cluster, as an operator might have kept from before encryption.
    const out = join(platform().dir, f.id, 'plain', 'snapshot.db');
    await restoreBackup({
      store,
      transit: openBaoRoot().transit(),
      cluster: f.cluster,
      key: first,
      destination: { kind: 'file', path: out },
    });
    plaintextDb = `${f.cluster}/${f.cluster}-${new Date(Date.now() - 60_000)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z')}.db`;
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: plaintextDb, Body: readFileSync(out) }));
  }, 480_000);
  afterAll(async () => {
    store?.destroy();
    await f?.stop();
  });

  it('latestBackupKey names the backup the job wrote, not a planted one', async () => {
    const key = await f.backupNow();
    expect(key).not.toBe(forged.db);
    expect(key).not.toBe(forged.envelope);
    expect(key).toMatch(new RegExp(`^${f.cluster}/${f.cluster}-\\d{8}T\\d{6}Z/$`));
  }, 180_000);

  it('restore-from a plaintext file without the confirmation is refused at Validating; nothing is stopped', async () => {
    await f.requestRestore(forged.db);
    const seen: string[] = [];
    const c = await f.waitEnd(seen, 120_000);
    expect(restoreState(c)).toBe('Failed');
    expect(conditionOf(c, 'RestoreReady')?.message).toMatch(
      /\(UnauthenticatedBackup\): .*kube-dc\.com\/restore-unauthenticated-confirmed/,
    );
    expect(seen).not.toContain('DrainingControlPlane');
    expect(
      (
        await f.kube.get<{ spec: { controlPlane: { deployment?: { replicas?: number } } } }>(
          TCP(f.ns, f.names.tenantControlPlane),
        )
      ).spec.controlPlane.deployment?.replicas,
    ).toBe(1);
    expect((await f.kube.get<{ spec: { replicas: number } }>(STATEFULSET(f.ns, f.sts))).spec.replicas).toBe(1);
  }, 180_000);

  it('a confirmation for another file does not count; the confirmed file is restored', async () => {
    await f.requestRestore(plaintextDb, { 'kube-dc.com/restore-unauthenticated-confirmed': forged.db });
    const refused = await f.waitEnd([], 120_000);
    expect(conditionOf(refused, 'RestoreReady')?.message).toContain('(UnauthenticatedBackup)');

    await f.requestRestore(plaintextDb, { 'kube-dc.com/restore-unauthenticated-confirmed': plaintextDb });
    const seen: string[] = [];
    const c = await f.waitEnd(seen, 300_000);
    expect(restoreState(c), JSON.stringify(conditionOf(c, 'RestoreReady'))).toBe('Succeeded');
    expect(seen).toContain('RestoringSnapshot');
  }, 420_000);
});
