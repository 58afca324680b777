import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_OBJECTS,
  HEADER_LENGTH,
  KDF_INFO_PREFIX,
  TAG_LENGTH,
  envelopePrefix,
  etcdSnapshotSource,
  kdfInfo,
  boundOf,
  restoreBackup,
  runBackup,
  serializeMetadata,
  type BackupErrorCode,
  type BackupStore,
  type MetadataV2,
} from '@kdc/backup-envelope';
import { OpenBaoClient, type TransitClient } from '@kdc/shared';
import {
  backupAccess,
  backupStore,
  backupToken,
  rootOpenBao,
  uniqueName,
  type BackupAccess,
} from '../src/backup-harness.ts';
import { platform } from './helpers.ts';

const SEGMENT = 64 * 1024;
const SEG_BYTES = SEGMENT + TAG_LENGTH;
const at = (i: number) => HEADER_LENGTH + i * SEG_BYTES;

async function download(store: BackupStore, key: string): Promise<Buffer> {
  const object = await store.getStream(key);
  const chunks: Buffer[] = [];
  for await (const c of object!.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('tampered backups in real S3 are refused before anything reaches the destination', () => {
  let store: BackupStore;
  let access: BackupAccess;
  let transit: TransitClient;
  let dir: string;
  let a: { key: string; file: Buffer; metadata: MetadataV2; text: string };
  let b: { key: string; file: Buffer; metadata: MetadataV2; text: string };
  let n = 0;
  // Planted copies get their own timestamps, far in the past, so they never collide.
  const nextDate = () => new Date(Date.UTC(2020, 0, 1) + ++n * 1000);

  const plant = async (
    objects: { snapshot?: Buffer; metadata?: string },
    cluster = access.cluster,
  ): Promise<string> => {
    const key = envelopePrefix(cluster, nextDate());
    if (objects.snapshot)
      await store.client.send(
        new PutObjectCommand({ Bucket: store.bucket, Key: key + ENVELOPE_OBJECTS.snapshot, Body: objects.snapshot }),
      );
    if (objects.metadata) await store.putText(key + ENVELOPE_OBJECTS.metadata, objects.metadata, 'application/json');
    return key;
  };

  const refuse = async (
    key: string,
    code: BackupErrorCode,
    options: { cluster?: string; transit?: TransitClient; expectedTransitKey?: string; message?: RegExp } = {},
  ) => {
    const parent = join(dir, uniqueName('dest'));
    const dataDir = join(parent, 'etcd-data');
    const error = await restoreBackup({
      store,
      transit: options.transit ?? transit,
      cluster: options.cluster ?? access.cluster,
      key,
      ...(options.expectedTransitKey ? { expectedTransitKey: options.expectedTransitKey } : {}),
      destination: { kind: 'data-dir', path: dataDir, etcdutl: platform().binaries.etcdutl },
    }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error, `restore of ${key} must fail with ${code}`).toBeDefined();
    expect(error!.code, error!.message).toBe(code);
    if (options.message) expect(error!.message).toMatch(options.message);
    // The destination was never created, and no temp file is left next to it.
    expect(existsSync(dataDir)).toBe(false);
    expect(existsSync(parent) ? readdirSync(parent) : []).toEqual([]);
    return error!;
  };

  beforeAll(async () => {
    const p = platform();
    dir = join(p.dir, uniqueName('backup-tamper'));
    mkdirSync(dir, { recursive: true });
    store = backupStore(p);
    access = await backupAccess(p, dir, 'bk-tamper');
    // The backup job's own least-privilege identity, as in production.
    transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();
    const take = async (now: Date) => {
      const { key, metadata } = await runBackup({
        store,
        transit,
        transitKey: access.transitKey,
        cluster: access.cluster,
        namespace: access.namespace,
        source: etcdSnapshotSource({ endpoint: p.etcd.endpoint }),
        segmentSize: SEGMENT,
        partSize: 5 * 1024 * 1024,
        now,
      });
      return {
        key,
        metadata,
        file: await download(store, key + ENVELOPE_OBJECTS.snapshot),
        text: (await store.getText(key + ENVELOPE_OBJECTS.metadata))!.text,
      };
    };
    a = await take(new Date(Date.now() - 120_000));
    b = await take(new Date(Date.now() - 60_000));
    expect(a.file.length).toBeGreaterThan(at(6)); // enough segments to move around
  });

  it('the untouched backups restore (the control)', async () => {
    const parent = join(dir, uniqueName('dest'));
    const result = await restoreBackup({
      store,
      transit,
      cluster: access.cluster,
      key: a.key,
      destination: { kind: 'file', path: join(parent, 'snapshot.db') },
    });
    expect(result).toMatchObject({ schemaVersion: 2, sha256: a.metadata.etcdSnapshotSha256 });
    expect(readdirSync(parent)).toEqual(['snapshot.db']);
  });

  it('a flipped byte in a segment: SEGMENT_TAMPERED naming the segment', async () => {
    const file = Buffer.from(a.file);
    file[at(3) + 1000]! ^= 0x40;
    const error = await refuse(await plant({ snapshot: file, metadata: a.text }), 'SEGMENT_TAMPERED', {
      message: /segment 3 /,
    });
    expect(error).toMatchObject({ details: { segment: 3 } });
  });

  it('a flipped byte in the last tag and in the header', async () => {
    const tag = Buffer.from(a.file);
    tag[tag.length - 1]! ^= 1;
    await refuse(await plant({ snapshot: tag, metadata: a.text }), 'SEGMENT_TAMPERED');
    const magic = Buffer.from(a.file);
    magic[2]! ^= 1;
    await refuse(await plant({ snapshot: magic, metadata: a.text }), 'HEADER_INVALID');
  });

  it('truncated at a segment boundary and inside a segment: TRUNCATED', async () => {
    await refuse(await plant({ snapshot: a.file.subarray(0, at(4)), metadata: a.text }), 'TRUNCATED', {
      message: /after segment 3, which is not the final segment/,
    });
    await refuse(await plant({ snapshot: a.file.subarray(0, at(4) + 777), metadata: a.text }), 'TRUNCATED', {
      message: /inside segment 4/,
    });
  });

  it('segments reordered or duplicated', async () => {
    const f = a.file;
    const swapped = Buffer.concat([
      f.subarray(0, at(1)),
      f.subarray(at(2), at(3)),
      f.subarray(at(1), at(2)),
      f.subarray(at(3)),
    ]);
    await refuse(await plant({ snapshot: swapped, metadata: a.text }), 'SEGMENT_REORDERED', {
      message: /position 1 .* holds segment 2/,
    });
    const duplicated = Buffer.concat([f.subarray(0, at(3)), f.subarray(at(2), at(3)), f.subarray(at(3))]);
    await refuse(await plant({ snapshot: duplicated, metadata: a.text }), 'SEGMENT_DUPLICATED', {
      message: /second copy of segment 2/,
    });
  });

  it('bytes appended: TRAILING_DATA', async () => {
    await refuse(
      await plant({ snapshot: Buffer.concat([a.file, Buffer.from('appended')]), metadata: a.text }),
      'TRAILING_DATA',
    );
    await refuse(
      await plant({ snapshot: Buffer.concat([a.file, a.file.subarray(at(0), at(2))]), metadata: a.text }),
      'TRAILING_DATA',
    );
  });

  it('metadata.json swapped between two backups: METADATA_MISMATCH', async () => {
    await refuse(await plant({ snapshot: a.file, metadata: b.text }), 'METADATA_MISMATCH', {
      message: /another backup/,
    });
    await refuse(await plant({ snapshot: b.file, metadata: a.text }), 'METADATA_MISMATCH');
  });

  it('a data key from another backup in otherwise intact metadata: METADATA_ALTERED', async () => {
    const m = { ...a.metadata, wrappedDek: b.metadata.wrappedDek };
    await refuse(await plant({ snapshot: a.file, metadata: serializeMetadata(m) }), 'METADATA_ALTERED', {
      message: /wrappedDek/,
    });
  });

  it('another cluster: WRONG_CLUSTER, also when copied under its prefix; an edited source.cluster: METADATA_ALTERED', async () => {
    const other = uniqueName('other');
    await refuse(a.key, 'WRONG_CLUSTER', {
      cluster: other,
      message: new RegExp(`backup of cluster "${access.cluster}"`),
    });
    const copied = await plant({ snapshot: a.file, metadata: a.text }, other);
    await refuse(copied, 'WRONG_CLUSTER', { cluster: other, message: /source\.cluster/ });
    // Rewriting the cluster (and the recorded kdf.info with it) does not make it restorable.
    const forged: MetadataV2 = { ...a.metadata, source: { ...a.metadata.source, cluster: other } };
    forged.kdf = { ...forged.kdf, info: kdfInfo(boundOf(forged)) };
    await refuse(await plant({ snapshot: a.file, metadata: serializeMetadata(forged) }, other), 'METADATA_ALTERED', {
      cluster: other,
      message: /key check/,
    });
    // ...and without rewriting kdf.info the edit is named.
    const edited = { ...a.metadata, source: { ...a.metadata.source, cluster: other } };
    await refuse(await plant({ snapshot: a.file, metadata: serializeMetadata(edited) }, other), 'METADATA_ALTERED', {
      cluster: other,
      message: /source\.cluster/,
    });
  });

  it('the wrong Transit key: WRONG_KEY', async () => {
    const p = platform();
    // The caller knows the cluster's backup key and refuses anything else before Transit.
    await refuse(a.key, 'WRONG_KEY', { expectedTransitKey: `${access.transitKey}-not`, message: /refusing it/ });
    // metadata.json naming another existing key: Transit cannot unwrap the DEK with it.
    const otherKey = uniqueName('bk-other-key');
    const root = rootOpenBao(p);
    await root.transit().createKey(otherKey);
    const forged: MetadataV2 = { ...a.metadata, transitKey: otherKey };
    forged.kdf = { ...forged.kdf, info: kdfInfo(boundOf(forged)) };
    expect(forged.kdf.info.startsWith(KDF_INFO_PREFIX)).toBe(true);
    await refuse(await plant({ snapshot: a.file, metadata: serializeMetadata(forged) }), 'WRONG_KEY', {
      transit: root.transit(),
      message: new RegExp(`Transit key ${otherKey} cannot unwrap`),
    });
  });

  it('an edited etcdSnapshotSha256: METADATA_ALTERED', async () => {
    const sha = a.metadata.etcdSnapshotSha256;
    const m = { ...a.metadata, etcdSnapshotSha256: (sha[0] === '0' ? '1' : '0') + sha.slice(1) };
    await refuse(await plant({ snapshot: a.file, metadata: serializeMetadata(m) }), 'METADATA_ALTERED', {
      message: /etcdSnapshotSha256/,
    });
  });

  it('no metadata.json: INCOMPLETE_BACKUP; a missing snapshot; a non-empty destination', async () => {
    await refuse(await plant({ snapshot: a.file }), 'INCOMPLETE_BACKUP');
    await refuse(await plant({ metadata: a.text }), 'INCOMPLETE_BACKUP');
    const parent = join(dir, uniqueName('busy'));
    const dataDir = join(parent, 'etcd-data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'keep'), 'mine');
    const error = await restoreBackup({
      store,
      transit,
      cluster: access.cluster,
      key: a.key,
      destination: { kind: 'data-dir', path: dataDir },
    }).catch((e: { code: string }) => e);
    expect((error as { code: string }).code).toBe('DESTINATION_NOT_EMPTY');
    expect(readdirSync(dataDir)).toEqual(['keep']);
    expect(readdirSync(parent)).toEqual(['etcd-data']);
  });
});
