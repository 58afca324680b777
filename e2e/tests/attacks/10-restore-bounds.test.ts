import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_OBJECTS,
  HEADER_LENGTH,
  ciphertextSizeFor,
  envelopePrefix,
  fileSnapshotSource,
  kdfInfo,
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
  type CliRun,
} from '../../src/backup-harness.ts';
import { startHostileS3, type HostileS3 } from '../../src/hostile-s3.ts';
import { platform } from '../helpers.ts';

// Finding 10: the restore sized its buffers and ranged downloads from metadata.json before the
// data key had authenticated anything: segments up to 1 GiB, a Promise per range for any segment
// count, a pool of range buffers wiped (so touched) on the way out. A bucket writer's forged
// metadata.json made every restore allocate gigabytes. And the restore never compared the
// backup's source.namespace with the cluster's: a same-named cluster's backup of another
// namespace was restored. Required: one set of bounds for writer and reader, checked before any
// allocation; the restore checks the source cluster and namespace.

/** Peak RSS of the restore process, reported by the process itself as it exits. */
const MAX_RSS = /MAXRSS (\d+)/;
const KIB = 1024;
const MIB = 1024 * KIB;

describe('attack 10: forged metadata.json sizes and a backup of another namespace', () => {
  const p = platform();
  const dir = join(p.dir, uniqueName('a10'));
  const bucket = 'hostile-a10';
  let access: BackupAccess;
  let store: BackupStore;
  let hostile: HostileS3;
  let real: { key: string; metadata: MetadataV2; bytes: Buffer };
  let preload: string;
  /** Peak RSS of an honest restore of the same backup: what an attacked one may not exceed by much. */
  let baseline = 0;

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    access = await backupAccess(p, dir, 'a10');
    store = backupStore(p);
    const transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token: await backupToken(p, access),
      timeoutMs: 10_000,
    }).transit();
    const file = join(dir, 'snapshot.db');
    writeFileSync(file, randomBytes(3 * MIB));
    const r = await runBackup({
      store,
      transit,
      transitKey: access.transitKey,
      cluster: access.cluster,
      namespace: access.namespace,
      source: fileSnapshotSource(file),
    });
    const body = await store.getStream(r.key + ENVELOPE_OBJECTS.snapshot);
    const chunks: Buffer[] = [];
    for await (const chunk of body!.body) chunks.push(chunk as Buffer);
    real = { key: r.key, metadata: r.metadata, bytes: Buffer.concat(chunks) };
    hostile = await startHostileS3(bucket);
    preload = join(dir, 'max-rss.mjs');
    writeFileSync(
      preload,
      "process.on('exit', () => process.stderr.write(`\\nMAXRSS ${process.resourceUsage().maxRSS}\\n`));\n",
    );
  }, 120_000);
  afterAll(async () => {
    store?.destroy();
    await hostile?.close();
  });

  /** Serves `metadata` (kdf.info made consistent with it) and `snapshot` under a fresh prefix. */
  const serve = (patch: Partial<MetadataV2>, snapshot: Buffer, reportedSize?: number): string => {
    // A stored object as large as the forged metadata says: what is not there reads as zeros.
    const key = envelopePrefix(access.cluster, new Date(Date.now() - Math.floor(Math.random() * 1e9)));
    const m: MetadataV2 = { ...real.metadata, ...patch };
    m.ciphertextSize = patch.ciphertextSize ?? ciphertextSizeFor(m.plaintextSize, m.segmentSize);
    m.kdf = {
      ...m.kdf,
      info: kdfInfo({
        schemaVersion: 2,
        algorithm: m.algorithm,
        transitKey: m.transitKey,
        createdAt: m.createdAt,
        source: m.source,
        segmentSize: m.segmentSize,
      }),
    };
    hostile.put(key + ENVELOPE_OBJECTS.metadata, { kind: 'bytes', body: Buffer.from(serializeMetadata(m)) });
    hostile.put(key + ENVELOPE_OBJECTS.snapshot, {
      kind: 'bytes',
      body: snapshot,
      ...(reportedSize !== undefined ? { reportedSize, fill: true } : {}),
    });
    return key;
  };
  const restore = async (
    key: string,
    extraEnv: Record<string, string> = {},
  ): Promise<CliRun & { maxRssBytes?: number }> => {
    const out = join(dir, uniqueName('out'), 'snapshot.db');
    const run = await runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--backup',
        key,
        '--output',
        out,
        '--auth-method',
        'kubernetes',
        '--token-file',
        access.tokenFile,
        '--transit-key',
        access.transitKey,
      ],
      cliEnv(p, dir, { KDC_NAMESPACE: access.namespace, S3_ENDPOINT: hostile.url, S3_BUCKET: bucket, ...extraEnv }),
      // The heap cap keeps old code that builds a Promise per range from eating the machine.
      { nodeArgs: ['--import', pathToFileURL(preload).href, '--max-old-space-size=256'], timeoutMs: 120_000 },
    );
    const rss = MAX_RSS.exec(run.stderr)?.[1];
    return { ...run, ...(rss ? { maxRssBytes: Number(rss) * KIB } : {}) };
  };

  it('baseline: the same restore path with honest metadata, for the memory it needs', async () => {
    const key = serve({}, real.bytes);
    const run = await restore(key);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(run.maxRssBytes).toBeDefined();
    baseline = run.maxRssBytes!;
    console.log(JSON.stringify({ baselineMaxRssMiB: Math.round(baseline / MIB) }));
    expect(baseline).toBeLessThan(320 * MIB);
  });

  it.each([
    // A 1 GiB segment (the reader's old maximum) on the streaming path.
    ['1 GiB segments', { segmentSize: 2 ** 30 }, () => real.bytes, undefined, /INVALID_METADATA: .*segmentSize/],
    // 2^40 segments of 16 bytes, with a stored size that matches, on the ranged path.
    [
      '2^40 segments',
      { segmentSize: 16, plaintextSize: 2 ** 44 },
      () => real.bytes,
      ciphertextSizeFor(2 ** 44, 16),
      /INVALID_METADATA: .*(segments|plaintextSize)/,
    ],
    // A legal 64 MiB segment, header edited to agree: refused by the key check, before any segment buffer.
    [
      '64 MiB segments, header edited to match',
      { segmentSize: 64 * MIB, plaintextSize: 512 * MIB },
      () => withSegmentSize(real.bytes, 64 * MIB),
      ciphertextSizeFor(512 * MIB, 64 * MIB),
      /METADATA_ALTERED/,
    ],
  ] as const)('%s: refused before the restore allocates for it', async (_, patch, snapshot, reportedSize, refusal) => {
    const key = serve(patch, snapshot(), reportedSize);
    const run = await restore(key);
    expect(run.code, run.stderr.slice(-2000)).toBe(1);
    expect(run.stderr).toMatch(refusal);
    expect(run.maxRssBytes, 'the restore died before it could report its memory').toBeDefined();
    console.log(
      JSON.stringify({
        variant: _,
        maxRssMiB: Math.round(run.maxRssBytes! / MIB),
        baselineMiB: Math.round(baseline / MIB),
      }),
    );
    expect(run.maxRssBytes!).toBeLessThan(baseline + 32 * MIB);
  });

  it('a backup of the same-named cluster of another namespace is refused', async () => {
    const token = await backupToken(p, access);
    const transit = new OpenBaoClient({
      endpoint: p.openbao.url,
      caBundle: p.openbao.caPem,
      token,
      timeoutMs: 10_000,
    }).transit();
    const file = join(dir, 'other.db');
    writeFileSync(file, randomBytes(64 * 1024));
    const other = await runBackup({
      store,
      transit,
      transitKey: access.transitKey,
      cluster: access.cluster,
      namespace: `${access.namespace}-other`,
      source: fileSnapshotSource(file),
      now: new Date(Date.now() + 60_000),
    });
    const out = join(dir, 'other-out', 'snapshot.db');
    const run = await runBackupCli(
      [
        'restore',
        '--cluster',
        access.cluster,
        '--backup',
        other.key,
        '--output',
        out,
        '--auth-method',
        'kubernetes',
        '--token-file',
        access.tokenFile,
        '--transit-key',
        access.transitKey,
      ],
      cliEnv(p, dir, { KDC_NAMESPACE: access.namespace }),
    );
    expect(run.code, run.stderr.slice(-2000)).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`WRONG_CLUSTER: .*namespace "${access.namespace}-other"`));
    expect(() => readFileSync(out)).toThrow();
  });
});

/** The same file with its header claiming another segment size (nothing else changed). */
function withSegmentSize(file: Buffer, segmentSize: number): Buffer {
  const copy = Buffer.from(file);
  copy.writeUInt32BE(segmentSize, 10);
  expect(HEADER_LENGTH).toBe(85);
  return copy;
}
