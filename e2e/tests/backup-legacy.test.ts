import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { ENVELOPE_OBJECTS, envelopePrefix, listBackups } from '@kdc/backup-envelope';
import { OpenBaoClient } from '@kdc/shared';
import { backupAccess, backupStore, backupToken, cliEnv, runBackupCli, uniqueName } from '../src/backup-harness.ts';
import { startEtcd, type EtcdServer } from '../src/etcd.ts';
import { platform } from './helpers.ts';

describe('the single-seal layout (schemaVersion 1) still restores', () => {
  const servers: EtcdServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('a v1 backup built by hand restores with the job CLI; a tampered one is refused', async () => {
    const p = platform();
    const dir = join(p.dir, uniqueName('backup-v1'));
    mkdirSync(dir, { recursive: true });
    const access = await backupAccess(p, dir, 'bk-v1');
    const store = backupStore(p);
    const etcdctl = (endpoint: string, ...args: string[]) =>
      execFileSync(p.binaries.etcdctl, [`--endpoints=${endpoint}`, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });

    // A real snapshot (etcdctl writes the database plus its SHA-256), with a marker in it.
    const marker = `/${access.cluster}/marker`;
    const value = randomBytes(16).toString('hex');
    etcdctl(p.etcd.endpoint, 'put', marker, value);
    const snapshotFile = join(dir, 'plain.db');
    etcdctl(p.etcd.endpoint, 'snapshot', 'save', snapshotFile);
    const plaintext = readFileSync(snapshotFile);

    // The v1 writer: one Transit data key, nonce || AES-256-GCM(no AAD) || tag.
    const transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();
    const datakey = await transit.datakey(access.transitKey, 'plaintext');
    const seal = (data: Buffer) => {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', datakey.plaintext!, nonce);
      return Buffer.concat([nonce, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
    };
    const sealed = seal(plaintext);
    const metadata = {
      schemaVersion: 1,
      algorithm: 'AES-256-GCM',
      transitKey: access.transitKey,
      transitKeyVersion: datakey.keyVersion,
      wrappedDek: datakey.ciphertext,
      createdAt: new Date(Date.now() - 3_600_000).toISOString(),
      source: { cluster: access.cluster, namespace: access.namespace },
      etcdSnapshotSha256: createHash('sha256').update(plaintext).digest('hex'),
    };
    datakey.plaintext!.fill(0);
    const put = async (key: string, file: Buffer) => {
      await store.client.send(
        new PutObjectCommand({ Bucket: store.bucket, Key: key + ENVELOPE_OBJECTS.snapshot, Body: file }),
      );
      await store.putText(key + ENVELOPE_OBJECTS.wrappedDek, `${metadata.wrappedDek}\n`, 'text/plain');
      await store.putText(key + ENVELOPE_OBJECTS.metadata, JSON.stringify(metadata, null, 2), 'application/json');
    };
    const good = envelopePrefix(access.cluster, new Date(metadata.createdAt));
    await put(good, sealed);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length >> 1]! ^= 1;
    const bad = envelopePrefix(access.cluster, new Date(Date.parse(metadata.createdAt) - 1000));
    await put(bad, tampered);

    const listed = await listBackups(store, access.cluster);
    expect(listed.backups.map((b) => [b.key, b.schemaVersion, b.transitKeyVersion])).toEqual([
      [bad, 1, 1],
      [good, 1, 1],
    ]);

    const env = cliEnv(p, dir);
    const auth = ['--auth-method', 'kubernetes', '--token-file', access.tokenFile];
    const refusedDir = join(dir, 'refused', 'etcd-data');
    const refused = await runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--backup',
        bad,
        '--data-dir',
        refusedDir,
        ...auth,
      ],
      env,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/SEGMENT_TAMPERED: snapshot\.db\.enc \(single-seal v1\) failed authentication/);
    expect(existsSync(refusedDir)).toBe(false);
    expect(readdirSync(join(dir, 'refused'))).toEqual([]);

    const dataDir = join(dir, 'restored', 'etcd-data');
    const restore = await runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--backup',
        good,
        '--data-dir',
        dataDir,
        ...auth,
      ],
      env,
    );
    expect(restore.code, restore.stderr).toBe(0);
    expect(restore.json.at(-1)).toMatchObject({
      schemaVersion: 1,
      plaintextSize: plaintext.length,
      sha256: metadata.etcdSnapshotSha256,
    });

    const etcd = await startEtcd({
      binary: p.binaries.etcd,
      dir,
      logDir: p.logDir,
      name: `${access.cluster}-v1-etcd`,
      dataDir,
    });
    servers.push(etcd);
    expect(etcdctl(etcd.endpoint, 'get', marker, '--print-value-only').trim()).toBe(value);
  }, 240_000);
});
