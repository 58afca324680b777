import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ENVELOPE_OBJECTS,
  envelopePrefix,
  etcdSnapshotSource,
  listBackups,
  minKeyVersion,
  restoreBackup,
  runBackup,
  serializeMetadata,
} from '@kdc/backup-envelope';
import { OpenBaoClient } from '@kdc/shared';
import {
  backupAccess,
  backupStore,
  backupToken,
  cliEnv,
  rootOpenBao,
  runBackupCli,
  uniqueName,
} from '../src/backup-harness.ts';
import { platform } from './helpers.ts';

describe('KEK rotation: backups at v1, v2, v3 -> rewrap -> all at v3, data untouched, all restore', () => {
  it('rewraps only the wrapped keys, then min_decryption_version can move to 3', async () => {
    const p = platform();
    const dir = join(p.dir, uniqueName('backup-rot'));
    mkdirSync(dir, { recursive: true });
    const access = await backupAccess(p, dir, 'bk-rot');
    const store = backupStore(p);
    const root = rootOpenBao(p).transit();
    const transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();

    const keys: string[] = [];
    const base = Date.now() - 600_000;
    for (let v = 1; v <= 3; v++) {
      if (v > 1) await root.rotate(access.transitKey);
      const { key, metadata } = await runBackup({
        store,
        transit,
        transitKey: access.transitKey,
        cluster: access.cluster,
        namespace: access.namespace,
        source: etcdSnapshotSource({ endpoint: p.etcd.endpoint }),
        now: new Date(base + v * 1000),
      });
      expect(metadata.transitKeyVersion).toBe(v);
      keys.push(key);
    }
    const before = await listBackups(store, access.cluster);
    expect(before.backups.map((b) => b.transitKeyVersion)).toEqual([1, 2, 3]);
    expect(minKeyVersion(before.backups)).toBe(1);
    const etags = async () =>
      Promise.all(keys.map(async (k) => (await store.head(k + ENVELOPE_OBJECTS.snapshot))!.etag));
    const snapshotETags = await etags();

    const env = cliEnv(p, dir);
    const auth = ['--auth-method', 'kubernetes', '--token-file', access.tokenFile];
    const dry = await runBackupCli(
      ['rewrap', '--cluster', access.cluster, '--namespace', access.namespace, '--dry-run', ...auth],
      env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(
      dry.json
        .filter((o) => o.status === 'would-rewrap')
        .map((o) => o.from)
        .sort(),
    ).toEqual([1, 2]);

    const rewrap = await runBackupCli(
      [
        'rewrap',
        '--cluster',
        access.cluster,
        '--namespace',
        access.namespace,
        '--transit-key',
        access.transitKey,
        ...auth,
      ],
      env,
    );
    expect(rewrap.code, rewrap.stderr).toBe(0);
    expect(rewrap.json.at(-1)).toMatchObject({
      summary: true,
      backups: 3,
      rewrapped: 2,
      failed: 0,
      latestVersion: { [access.transitKey]: 3 },
    });

    const after = await listBackups(store, access.cluster);
    expect(after.backups.map((b) => b.transitKeyVersion)).toEqual([3, 3, 3]);
    expect(minKeyVersion(after.backups)).toBe(3);
    for (const b of after.backups) {
      expect((await store.getText(b.key + ENVELOPE_OBJECTS.wrappedDek))!.text.trim()).toBe(b.metadata!.wrappedDek);
    }
    expect(await etags()).toEqual(snapshotETags);
    // A second run has nothing left to do.
    const again = await runBackupCli(
      ['rewrap', '--cluster', access.cluster, '--namespace', access.namespace, ...auth],
      env,
    );
    expect(again.json.at(-1)).toMatchObject({ rewrapped: 0, failed: 0 });

    // Every backup still restores, also once versions 1 and 2 can no longer decrypt.
    await root.configure(access.transitKey, { min_decryption_version: 3 });
    for (const key of keys) {
      const result = await restoreBackup({
        store,
        transit,
        cluster: access.cluster,
        key,
        destination: { kind: 'file', path: join(dir, uniqueName('restored'), 'snapshot.db') },
      });
      expect(result.sha256).toBe(after.backups.find((b) => b.key === key)!.metadata!.etcdSnapshotSha256);
    }
    // A copy with the pre-rewrap metadata.json no longer restores: that is why rewrap runs first.
    const staleV1 = envelopePrefix(access.cluster, new Date(base));
    await store.client.send(
      new CopyObjectCommand({
        Bucket: store.bucket,
        CopySource: `${store.bucket}/${keys[0]}${ENVELOPE_OBJECTS.snapshot}`,
        Key: staleV1 + ENVELOPE_OBJECTS.snapshot,
      }),
    );
    await store.putText(
      staleV1 + ENVELOPE_OBJECTS.metadata,
      serializeMetadata(before.backups[0]!.metadata!),
      'application/json',
    );
    const refused = await restoreBackup({
      store,
      transit,
      cluster: access.cluster,
      key: staleV1,
      destination: { kind: 'file', path: join(dir, uniqueName('refused'), 'snapshot.db') },
    }).catch((e: { code: string; message: string }) => e);
    expect(refused).toMatchObject({ code: 'WRONG_KEY', message: expect.stringMatching(/min_decryption_version/) });
  }, 240_000);
});
