// npm run bench:backup: a synthetic 1 GiB etcd snapshot (BENCH_BACKUP_GIB=4 for 4 GiB) through
// the real job CLI against the local MinIO: encrypt+upload vs uploading the same bytes
// unencrypted with the same multipart settings, restore (download+decrypt+verify to a file) vs
// a plain download to a file; same run, interleaved rounds, medians and ranges. The job's peak RSS
// is read from /proc while it runs. Then the production source: a real etcd filled with
// BENCH_ETCD_MIB (256) MiB, streamed over gRPC. Then the format's crypto alone, in process, against
// `openssl speed` for the same two passes (AES-256-GCM and SHA-256), measured side by side.
// Prints one JSON line last.
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
import { execFileSync, spawn } from 'node:child_process';
import {
  ALGORITHM,
  SCHEMA_VERSION,
  ParallelEncryptor,
  deleteBackup,
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  DEFAULT_SEGMENT_SIZE,
} from '@kdc/backup-envelope';
import { bundle, imageSpec } from '@kdc/images';
import { BACKUP_MAIN, backupStore, cliEnv, rootOpenBao } from '../src/backup-harness.ts';
import { startPlatform } from '../src/platform.ts';
import { nodeCryptoFloorGibPerSecond } from './crypto-floor.ts';
import { median, round } from './stats.ts';

const GIB = Number(process.env.BENCH_BACKUP_GIB ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MIB = 1 << 20;

// What runs: the kdc-backup image's /app/main.js (the same esbuild bundle, built here), or with
// BENCH_BACKUP_FROM_SOURCES=1 the TypeScript sources under type stripping, which hold the module
// graph and the stripper besides (about 20 MB more RSS, measured).
const FROM_SOURCES = process.env.BENCH_BACKUP_FROM_SOURCES === '1';
let jobArgs = ['--conditions=source', BACKUP_MAIN];

/** Runs the job CLI, sampling the child's peak RSS (VmHWM) from /proc. */
function runJob(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; peakRssMb: number; wallMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...jobArgs, ...args], {
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

/**
 * The format's crypto alone, in process: the job's own encryptor (ParallelEncryptor: SHA-256 of
 * the plaintext on this thread, AES-256-GCM per 1 MiB segment on its crypto worker, into reused
 * 8 MiB part buffers released at once) over `gib` GiB from memory. Wall-clock GiB/s, and GiB per
 * CPU-second of the whole process (both threads).
 */
async function aeadGibPerSecond(chunk: Buffer, gib = 2): Promise<{ wall: number; cpu: number }> {
  const encryptor = () =>
    new ParallelEncryptor({
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
  const enc = encryptor();
  async function* source() {
    for (let i = 0; i < gib * 16; i++) yield chunk;
  }
  try {
    // Warm-up (worker start, JIT), then the timed pass.
    for await (const part of enc.parts(source(), { partSize: DEFAULT_PART_SIZE, parts: 4 })) part.release();
  } finally {
    await enc.close();
  }
  const timed = encryptor();
  try {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for await (const part of timed.parts(source(), { partSize: DEFAULT_PART_SIZE, parts: 4 })) part.release();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { wall: gib / seconds, cpu: gib / ((cpu.user + cpu.system) / 1e6) };
  } finally {
    await timed.close();
  }
}

/**
 * `openssl speed -bytes 16384 -seconds N [-elapsed] -evp <alg>` in GiB/s. Without -elapsed openssl
 * divides by its user CPU time (per CPU-second); with it, by wall-clock time like aeadGibPerSecond.
 */
function opensslGibPerSecond(alg: 'aes-256-gcm' | 'sha256', elapsed: boolean, seconds = 3): number {
  const out = execFileSync(
    'openssl',
    ['speed', '-bytes', '16384', '-seconds', String(seconds), ...(elapsed ? ['-elapsed'] : []), '-evp', alg],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  // The last line: "<name>   <1000s of bytes per second>k"
  const match = /\s([\d.]+)k\s*$/.exec(out.trim().split('\n').at(-1) ?? '');
  if (!match) throw new Error(`cannot parse openssl speed output: ${out.slice(-300)}`);
  return (Number(match[1]) * 1000) / 2 ** 30;
}

/** median, min and max of a list, rounded. */
const spread = (values: number[], digits = 0) => ({
  median: round(median(values), digits),
  min: round(Math.min(...values), digits),
  max: round(Math.max(...values), digits),
});

const platform = await startPlatform({ installCrds: false });
try {
  const p = platform.state;
  const dir = join(p.dir, 'bench-backup');
  mkdirSync(dir, { recursive: true });
  const snapshot = join(dir, 'snapshot.db');
  if (!FROM_SOURCES)
    jobArgs = [
      join((await bundle(imageSpec('kdc-backup'), join(dir, 'app'), { version: '0.0.0-bench' })).dir, 'main.js'),
    ];
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
      `round ${r + 1}: backup ${Math.round(ours.upload.at(-1)!)} ms vs plain upload ${Math.round(plain.upload.at(-1)!)} ms; restore ${Math.round(ours.restore.at(-1)!)} ms vs plain download ${Math.round(plain.download.at(-1)!)} ms; peak RSS backup ${Math.round(ours.rss.at(-1)!)} MiB, restore ${Math.round(ours.restoreRss.at(-1)!)} MiB`,
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

  // The format's crypto against openssl and against Node's own floor, interleaved: openssl (wall),
  // the Node floor, ours, openssl (CPU).
  const aeadRounds: { wall: number; cpu: number }[] = [];
  const opensslWall: number[] = [];
  const opensslCpu: number[] = [];
  const nodeFloor: number[] = [];
  const chunk = randomBytes(64 * MIB);
  for (let r = 0; r < ROUNDS; r++) {
    opensslWall.push(Math.min(opensslGibPerSecond('aes-256-gcm', true), opensslGibPerSecond('sha256', true)));
    nodeFloor.push(await nodeCryptoFloorGibPerSecond(chunk));
    aeadRounds.push(await aeadGibPerSecond(chunk));
    opensslCpu.push(Math.min(opensslGibPerSecond('aes-256-gcm', false), opensslGibPerSecond('sha256', false)));
    console.error(
      `crypto round ${r + 1}: format ${round(aeadRounds.at(-1)!.wall, 2)} GiB/s (${round(aeadRounds.at(-1)!.cpu, 2)} GiB per CPU-s); Node's floor ${round(nodeFloor.at(-1)!, 2)} GiB/s; openssl min(aes-256-gcm, sha256) ${round(opensslWall.at(-1)!, 2)} GiB/s elapsed, ${round(opensslCpu.at(-1)!, 2)} per CPU-s`,
    );
  }
  const aead = median(aeadRounds.map((a) => a.wall));
  const aeadCpu = median(aeadRounds.map((a) => a.cpu));
  const openssl = median(opensslWall);
  store.destroy();

  const mibs = (ms: number) => round(bytes / MIB / (ms / 1000), 1);
  console.log(
    JSON.stringify({
      bench: 'backup',
      gib: GIB,
      rounds: ROUNDS,
      job: FROM_SOURCES
        ? 'kdc-backup from its TypeScript sources (--conditions=source)'
        : "kdc-backup as its image runs it: the image's esbuild bundle (/app/main.js and its crypto worker)",
      segment_size: DEFAULT_SEGMENT_SIZE,
      part_size: DEFAULT_PART_SIZE,
      upload_concurrency: DEFAULT_QUEUE_SIZE,
      baseline:
        'the same snapshot file uploaded unencrypted (same BackupStore multipart upload, part size and concurrency) and downloaded to a file with one GET, same run',
      timing:
        "ratios compare the job's own duration (its result line: Transit datakey, stream, upload, metadata / unwrap, download, verify, fsync) with the baseline; *_wall_ms add process start and OpenBao login",
      rounds_detail: {
        backup_ms: spread(ours.upload),
        plain_upload_ms: spread(plain.upload),
        restore_ms: spread(ours.restore),
        plain_download_ms: spread(plain.download),
        upload_ratio: spread(
          ours.upload.map((ms, i) => plain.upload[i]! / ms),
          3,
        ),
        restore_ratio: spread(
          ours.restore.map((ms, i) => plain.download[i]! / ms),
          3,
        ),
        backup_peak_rss_mb: spread(ours.rss),
        restore_peak_rss_mb: spread(ours.restoreRss),
        aead_gib_per_s: spread(
          aeadRounds.map((a) => a.wall),
          2,
        ),
        openssl_gib_per_s: spread(opensslWall, 2),
        aead_vs_openssl_ratio: spread(
          aeadRounds.map((a, i) => a.wall / opensslWall[i]!),
          3,
        ),
        node_floor_gib_per_s: spread(nodeFloor, 2),
        aead_vs_node_floor_ratio: spread(
          aeadRounds.map((a, i) => a.wall / nodeFloor[i]!),
          3,
        ),
      },
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
      peak_rss_mb: Math.round(Math.max(...ours.rss, ...ours.restoreRss)),
      backup_peak_rss_mb: Math.round(Math.max(...ours.rss)),
      restore_peak_rss_mb: Math.round(Math.max(...ours.restoreRss)),
      aead: "ParallelEncryptor from memory (the job's encryptor: SHA-256 on the main thread, AES-256-GCM on its worker), 2 GiB, wall clock; openssl_gib_per_s = min(openssl speed -bytes 16384 -elapsed -evp aes-256-gcm, sha256), same run, interleaved, medians",
      aead_gib_per_s: round(aead, 2),
      openssl_gib_per_s: round(openssl, 2),
      aead_vs_openssl_ratio: round(aead / openssl, 3),
      node_floor:
        "Node's own crypto calls for the same two passes on two threads at once (SHA-256 on one, AES-256-GCM in 64 KiB calls on a worker), nothing else: e2e/bench/crypto-floor.ts",
      node_floor_gib_per_s: round(median(nodeFloor), 2),
      aead_vs_node_floor_ratio: round(aead / median(nodeFloor), 3),
      node_floor_vs_openssl_ratio: round(median(nodeFloor) / openssl, 3),
      aead_cpu_gib_per_s: round(aeadCpu, 2),
      openssl_cpu_gib_per_s: round(median(opensslCpu), 2),
      aead_vs_openssl_cpu_ratio: round(aeadCpu / median(opensslCpu), 3),
      etcd_source_snapshot_mib: Math.round(etcdResult.plaintextSize / MIB),
      etcd_source_backup_mib_per_s: round(etcdResult.plaintextSize / MIB / (etcdResult.durationMs / 1000), 1),
      etcd_source_peak_rss_mb: Math.round(etcdRun.peakRssMb),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
