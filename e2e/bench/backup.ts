// npm run bench:backup: a synthetic 1 GiB etcd snapshot (BENCH_BACKUP_GIB=4 for 4 GiB) through
// the real job CLI against the local MinIO: encrypt+upload vs uploading the same bytes
// unencrypted with the same multipart settings, restore (download+decrypt+verify to a file) vs
// a plain download to a file; same run, interleaved rounds, medians. The job's peak RSS is read
// from /proc while it runs. Then the production source: a real etcd filled with BENCH_ETCD_MIB
// (256) MiB, streamed over gRPC. Prints one JSON line last.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { spawn } from 'node:child_process';
import {
  ALGORITHM,
  SCHEMA_VERSION,
  StreamEncryptor,
  deleteBackup,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  DEFAULT_SEGMENT_SIZE,
} from '@kdc/backup-envelope';
import { BACKUP_MAIN, backupStore, cliEnv, rootOpenBao } from '../src/backup-harness.ts';
import { startPlatform } from '../src/platform.ts';
import { median, round } from './stats.ts';

const GIB = Number(process.env.BENCH_BACKUP_GIB ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MIB = 1 << 20;

/** Runs the job CLI, sampling the child's peak RSS (VmHWM) from /proc. */
function runJob(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; peakRssMb: number; wallMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', BACKUP_MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakKb = 0;
    const sample = () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      } catch {
        // exited between samples
      }
    };
    const timer = setInterval(sample, 20);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, peakRssMb: peakKb / 1024, wallMs: performance.now() - started });
    });
  });
}

/** A database of `gib` GiB of random bytes followed by its SHA-256 (what etcdctl snapshot save writes). */
function syntheticSnapshot(path: string, gib: number): void {
  const fd = openSync(path, 'w', 0o600);
  const hash = createHash('sha256');
  const block = randomBytes(64 * MIB);
  for (let i = 0; i < (gib * 1024) / 64; i++) {
    block.writeUInt32BE(i, 0); // not one repeated block, so nothing below can dedupe it
    hash.update(block);
    writeSync(fd, block);
  }
  writeSync(fd, hash.digest());
  closeSync(fd);
}

/** In-process AEAD throughput of the format (encrypt, 1 MiB segments, 1 GiB from memory). */
async function aeadGibPerSecond(): Promise<number> {
  const chunk = randomBytes(64 * MIB);
  const enc = new StreamEncryptor({
    dek: randomBytes(32),
    bound: {
      schemaVersion: SCHEMA_VERSION,
      algorithm: ALGORITHM,
      transitKey: 'bench',
      createdAt: new Date().toISOString(),
      source: { cluster: 'bench', namespace: 'bench' },
      segmentSize: DEFAULT_SEGMENT_SIZE,
    },
  });
  const t0 = performance.now();
  async function* source() {
    for (let i = 0; i < 16; i++) yield chunk;
  }
  for await (const part of enc.encrypt(source())) void part;
  return 1 / ((performance.now() - t0) / 1000);
}

const platform = await startPlatform({ installCrds: false });
try {
  const p = platform.state;
  const dir = join(p.dir, 'bench-backup');
  mkdirSync(dir, { recursive: true });
  const snapshot = join(dir, 'snapshot.db');
  let t0 = performance.now();
  syntheticSnapshot(snapshot, GIB);
  console.error(`synthetic ${GIB} GiB snapshot written in ${Math.round(performance.now() - t0)} ms`);
  const bytes = GIB * 1024 * MIB + 32;

  const root = rootOpenBao(p);
  const transitKey = 'bench-backup-key';
  await root.transit().createKey(transitKey);
  const env = cliEnv(p, dir, { OPENBAO_TOKEN: p.openbao.rootToken });
  const store = backupStore(p);
  const cluster = 'bench';

  const ours = {
    upload: [] as number[],
    uploadWall: [] as number[],
    restore: [] as number[],
    restoreWall: [] as number[],
    rss: [] as number[],
    restoreRss: [] as number[],
  };
  const plain = { upload: [] as number[], download: [] as number[] };

  const plainUpload = async (key: string) => {
    const t = performance.now();
    await store.upload(key, createReadStream(snapshot, { highWaterMark: MIB }), {
      partSize: DEFAULT_PART_SIZE,
      queueSize: DEFAULT_QUEUE_SIZE,
    });
    return performance.now() - t;
  };
  const plainDownload = async (key: string, path: string) => {
    const t = performance.now();
    const object = await store.getStream(key);
    await pipeline(object!.body, createWriteStream(path, { flush: true, highWaterMark: MIB, mode: 0o600 }));
    return performance.now() - t;
  };
  const ourBackup = async () => {
    const run = await runJob(
      [
        'backup',
        '--cluster',
        cluster,
        '--namespace',
        'bench',
        '--transit-key',
        transitKey,
        '--snapshot-file',
        snapshot,
        '--auth-method',
        'token',
      ],
      env,
    );
    if (run.code !== 0) throw new Error(`backup failed (${run.code}): ${run.stderr.slice(-2000)}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      key: string;
      durationMs: number;
      plaintextSize: number;
    };
    if (result.plaintextSize !== bytes) throw new Error(`backup size ${result.plaintextSize} != ${bytes}`);
    ours.upload.push(result.durationMs);
    ours.uploadWall.push(run.wallMs);
    ours.rss.push(run.peakRssMb);
    return result.key;
  };
  const ourRestore = async (key: string, path: string) => {
    const run = await runJob(
      [
        'restore',
        '--cluster',
        cluster,
        '--namespace',
        'bench',
        '--backup',
        key,
        '--output',
        path,
        '--auth-method',
        'token',
      ],
      env,
    );
    if (run.code !== 0) throw new Error(`restore failed (${run.code}): ${run.stderr.slice(-2000)}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { durationMs: number };
    ours.restore.push(result.durationMs);
    ours.restoreWall.push(run.wallMs);
    ours.restoreRss.push(run.peakRssMb);
  };

  for (let r = 0; r < ROUNDS; r++) {
    const plainKey = `bench-plain/round-${r}.db`;
    // Alternate who goes first, so that cache and disk effects hit both sides alike.
    let key: string;
    if (r % 2 === 0) {
      plain.upload.push(await plainUpload(plainKey));
      key = await ourBackup();
    } else {
      key = await ourBackup();
      plain.upload.push(await plainUpload(plainKey));
    }
    const ourFile = join(dir, `restored-${r}.db`);
    const plainFile = join(dir, `downloaded-${r}.db`);
    if (r % 2 === 0) {
      plain.download.push(await plainDownload(plainKey, plainFile));
      await ourRestore(key, ourFile);
    } else {
      await ourRestore(key, ourFile);
      plain.download.push(await plainDownload(plainKey, plainFile));
    }
    rmSync(ourFile);
    rmSync(plainFile);
    await store.delete([plainKey]);
    await deleteBackup(store, key);
    console.error(
      `round ${r + 1}: backup ${Math.round(ours.upload.at(-1)!)} ms vs plain upload ${Math.round(plain.upload.at(-1)!)} ms; restore ${Math.round(ours.restore.at(-1)!)} ms vs plain download ${Math.round(plain.download.at(-1)!)} ms; backup peak RSS ${Math.round(ours.rss.at(-1)!)} MiB`,
    );
  }
  // The production source: a real etcd with ETCD_MIB MiB of values, streamed over gRPC.
  const etcdMib = Number(process.env.BENCH_ETCD_MIB ?? 256);
  t0 = performance.now();
  const value = randomBytes(MIB).toString('base64');
  for (let i = 0; i < etcdMib; i += 4) {
    await Promise.all(
      [0, 1, 2, 3].map(async (j) => {
        const key = Buffer.from(`/bench-backup/value-${i + j}`).toString('base64');
        const response = await fetch(`${p.etcd.endpoint}/v3/kv/put`, {
          method: 'POST',
          body: JSON.stringify({ key, value }),
        });
        if (!response.ok) throw new Error(`etcd put: ${response.status} ${await response.text()}`);
      }),
    );
  }
  console.error(`etcd filled with ~${etcdMib} MiB in ${Math.round(performance.now() - t0)} ms`);
  const etcdRun = await runJob(
    [
      'backup',
      '--cluster',
      'bench-etcd',
      '--namespace',
      'bench',
      '--transit-key',
      transitKey,
      '--etcd-endpoint',
      p.etcd.endpoint,
      '--auth-method',
      'token',
    ],
    env,
  );
  if (etcdRun.code !== 0) throw new Error(`etcd backup failed: ${etcdRun.stderr.slice(-2000)}`);
  const etcdResult = JSON.parse(etcdRun.stdout.trim().split('\n').at(-1)!) as {
    key: string;
    durationMs: number;
    plaintextSize: number;
  };
  await deleteBackup(store, etcdResult.key);
  console.error(
    `etcd source: ${Math.round(etcdResult.plaintextSize / MIB)} MiB snapshot in ${etcdResult.durationMs} ms, peak RSS ${Math.round(etcdRun.peakRssMb)} MiB`,
  );

  t0 = performance.now();
  const aead = await aeadGibPerSecond();
  console.error(`AEAD alone: ${round(aead, 2)} GiB/s (${Math.round(performance.now() - t0)} ms)`);
  store.destroy();

  const mibs = (ms: number) => round(bytes / MIB / (ms / 1000), 1);
  console.log(
    JSON.stringify({
      bench: 'backup',
      gib: GIB,
      rounds: ROUNDS,
      segment_size: DEFAULT_SEGMENT_SIZE,
      part_size: DEFAULT_PART_SIZE,
      upload_concurrency: DEFAULT_QUEUE_SIZE,
      baseline:
        'the same snapshot file uploaded unencrypted (same BackupStore multipart upload, part size and concurrency) and downloaded to a file with one GET, same run',
      timing:
        "ratios compare the job's own duration (its result line: Transit datakey, stream, upload, metadata / unwrap, download, verify, fsync) with the baseline; *_wall_ms add process start and OpenBao login",
      backup_ms: Math.round(median(ours.upload)),
      backup_wall_ms: Math.round(median(ours.uploadWall)),
      plain_upload_ms: Math.round(median(plain.upload)),
      backup_mib_per_s: mibs(median(ours.upload)),
      plain_upload_mib_per_s: mibs(median(plain.upload)),
      restore_ms: Math.round(median(ours.restore)),
      restore_wall_ms: Math.round(median(ours.restoreWall)),
      plain_download_ms: Math.round(median(plain.download)),
      upload_ratio: round(median(plain.upload) / median(ours.upload)),
      restore_ratio: round(median(plain.download) / median(ours.restore)),
      peak_rss_mb: Math.round(Math.max(...ours.rss)),
      restore_peak_rss_mb: Math.round(Math.max(...ours.restoreRss)),
      aead_gib_per_s: round(aead, 2),
      etcd_source_snapshot_mib: Math.round(etcdResult.plaintextSize / MIB),
      etcd_source_backup_mib_per_s: round(etcdResult.plaintextSize / MIB / (etcdResult.durationMs / 1000), 1),
      etcd_source_peak_rss_mb: Math.round(etcdRun.peakRssMb),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
