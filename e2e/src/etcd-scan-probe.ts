// Runs one coverage scan in a process of its own and prints what it cost as one JSON line, so the
// peak RSS is the scanner's alone (a test runner's heap would hide it). Also what a benchmark
// uses for scan_objects_per_s.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openEtcdKvReader, scanCoverage, type CoverageScan, type EtcdConnection } from '@kdc/shared/etcd';

const SELF = fileURLToPath(import.meta.url);

export interface ScanProbeInput {
  endpoint: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  prefix: string;
  resources: string[];
  currentKeyIds?: string[];
  /** V8 heap cap for the child (MiB): a scanner that held every value would die under it. */
  maxOldSpaceMiB?: number;
}

export interface ScanProbeResult {
  scan: CoverageScan;
  /** The scan alone: gRPC is loaded and etcd reached once before the clock starts. */
  seconds: number;
  rowsPerSecond: number;
  /** Loading gRPC and the first answer from etcd (a cold start pays it once). */
  warmupSeconds: number;
  /** getrusage maxrss of the child, MiB. */
  peakRssMiB: number;
}

/** Scans in a child Node process; rejects with the child's stderr when it fails. */
export function scanInChild(input: ScanProbeInput): Promise<ScanProbeResult> {
  const args = [
    '--conditions=source',
    ...(input.maxOldSpaceMiB ? [`--max-old-space-size=${input.maxOldSpaceMiB}`] : []),
    SELF,
  ];
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SCAN_PROBE: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`scan probe exited ${code}: ${stderr.slice(-2000)}`));
      resolve(JSON.parse(last) as ScanProbeResult);
    });
  });
}

async function main(): Promise<void> {
  const input = JSON.parse(process.env.SCAN_PROBE ?? '{}') as ScanProbeInput;
  const connection: EtcdConnection = { endpoint: input.endpoint };
  if (input.caFile) connection.caPem = readFileSync(input.caFile, 'utf8');
  if (input.certFile) connection.certPem = readFileSync(input.certFile, 'utf8');
  if (input.keyFile) connection.keyPem = readFileSync(input.keyFile, 'utf8');
  const cold = process.hrtime.bigint();
  const warm = openEtcdKvReader(connection);
  await warm.count(input.prefix).finally(() => warm.close());
  const started = process.hrtime.bigint();
  const scan = await scanCoverage({
    connection,
    prefix: input.prefix,
    resources: input.resources,
    currentKeyIds: input.currentKeyIds ?? [],
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: ScanProbeResult = {
    scan,
    seconds,
    rowsPerSecond: Math.round(scan.total / seconds),
    warmupSeconds: Number(started - cold) / 1e9,
    peakRssMiB: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
