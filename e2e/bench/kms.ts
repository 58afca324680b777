// npm run bench:kms: the plugin over its socket vs the same Transit operations over HTTPS, driven
// by one Go load generator (kms-load: grpc-go and the k8s.io/kms stubs, kube-apiserver's own
// client stack) so that neither side pays for a Node client. Prints one JSON line last.
//
// Latency is measured the way kube-apiserver calls the plugin: one call at a time (Encrypt once
// per DEK, Decrypt once per DEK cache miss, Status on its poll). Throughput and the ratio are
// measured at BENCH_CONCURRENCY callers, whose latencies are reported too (under saturation they
// are queueing for the machine's cores, for the plugin and raw Transit alike).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { loadKmsV2 } from '@kdc/kms-plugin';
import { OpenBaoClient, OPENBAO_K8S_AUTH_MOUNT } from '@kdc/shared';
import { ensureBinaries } from '../src/binaries.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startPlatform } from '../src/platform.ts';
import { median, percentile, round } from './stats.ts';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
// Throughput is measured without a heap cap unless asked (the tests run the plugin capped at 64 MiB).
process.env.KDC_PLUGIN_NODE_OPTIONS ??= '';
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const STATUS_CALLS = 5_000;

interface Run {
  latencies: number[];
  opsPerSecond: number;
}

const { 'kms-load': kmsLoad } = await ensureBinaries(['kms-load']);
async function drive(mode: string, args: string[]): Promise<Run> {
  const { stdout } = await promisify(execFile)(kmsLoad, [mode, ...args], { maxBuffer: 1 << 28 });
  const result = JSON.parse(stdout) as { latencies_ms: number[]; seconds: number };
  return { latencies: result.latencies_ms, opsPerSecond: result.latencies_ms.length / result.seconds };
}
const sorted = (runs: Run[]) => runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
const p = (runs: Run[], q: number) => round(percentile(sorted(runs), q));

/** The gRPC stack alone: an empty Status handler in grpc-js, the plugin's server library. */
async function grpcFloor(dir: string): Promise<Run> {
  const socket = join(dir, 'floor.sock');
  rmSync(socket, { force: true });
  const server = new Server();
  const status = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
    callback(null, { version: 'v2', healthz: 'ok', key_id: 'k'.repeat(64) });
  server.addService(loadKmsV2().service, { Status: status, Encrypt: status, Decrypt: status });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  try {
    return await drive('status', ['-socket', socket, '-n', String(STATUS_CALLS)]);
  } finally {
    server.forceShutdown();
  }
}

/** Below grpc-js: node:http2 answering every stream with one precomputed Status response. */
async function http2Floor(dir: string): Promise<Run> {
  const socket = join(dir, 'floor-h2.sock');
  rmSync(socket, { force: true });
  const message = loadKmsV2().service.Status!.responseSerialize({
    version: 'v2',
    healthz: 'ok',
    key_id: 'k'.repeat(64),
  });
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  const frame = Buffer.concat([prefix, message]);
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  try {
    return await drive('status', ['-socket', socket, '-n', String(STATUS_CALLS)]);
  } finally {
    server.close();
  }
}

const platform = await startPlatform({ installCrds: false });
try {
  const tenant = await kmsTenant(platform.state, { prefix: 'bench', startApiserver: false });
  // The baseline uses the plugin's own identity (same role, same policy), so OpenBao does the
  // same token and ACL work on both sides. The token goes to kms-load in a 0600 file, not argv.
  const anonymous = new OpenBaoClient({
    endpoint: platform.state.openbao.url,
    caBundle: platform.state.openbao.caPem,
    timeoutMs: 10_000,
  });
  const login = await anonymous.loginKubernetes(
    OPENBAO_K8S_AUTH_MOUNT,
    tenant.role,
    readFileSync(tenant.tokenFile, 'utf8').trim(),
  );
  const tokenFile = join(tenant.dir, 'bench-openbao-token');
  writeFileSync(tokenFile, login.clientToken, { mode: 0o600 });
  const caFile = join(tenant.dir, 'bench-openbao-ca.pem');
  writeFileSync(caFile, platform.state.openbao.caPem);
  const plugin = ['-socket', tenant.plugin.socket];
  const transit = [
    '-addr',
    platform.state.openbao.url,
    '-ca',
    caFile,
    '-token-file',
    tokenFile,
    '-key',
    tenant.transitKey,
  ];
  const half = `${ROUND_MS / 2}ms`;

  const floor = await grpcFloor(tenant.dir);
  const h2Floor = await http2Floor(tenant.dir);
  const status = await drive('status', [...plugin, '-n', String(STATUS_CALLS)]);

  const encSeq: Run[] = [],
    decSeq: Run[] = [],
    rawEncSeq: Run[] = [],
    rawDecSeq: Run[] = [];
  const enc: Run[] = [],
    dec: Run[] = [],
    rawEnc: Run[] = [],
    rawDec: Run[] = [];
  const pluginOps: number[] = [],
    rawOps: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate plugin and baseline within each round so that machine noise hits both alike.
    encSeq.push(await drive('encrypt', [...plugin, '-c', '1', '-duration', half]));
    decSeq.push(await drive('decrypt', [...plugin, '-c', '1', '-duration', half]));
    rawEncSeq.push(await drive('transit-encrypt', [...transit, '-c', '1', '-duration', half]));
    rawDecSeq.push(await drive('transit-decrypt', [...transit, '-c', '1', '-duration', half]));
    const load = ['-c', String(CONCURRENCY), '-duration', half];
    enc.push(await drive('encrypt', [...plugin, ...load]));
    dec.push(await drive('decrypt', [...plugin, ...load]));
    rawEnc.push(await drive('transit-encrypt', [...transit, ...load]));
    rawDec.push(await drive('transit-decrypt', [...transit, ...load]));
    pluginOps.push((enc.at(-1)!.opsPerSecond + dec.at(-1)!.opsPerSecond) / 2);
    rawOps.push((rawEnc.at(-1)!.opsPerSecond + rawDec.at(-1)!.opsPerSecond) / 2);
    console.error(
      `round ${r + 1}: plugin ${Math.round(pluginOps.at(-1)!)} ops/s, raw transit ${Math.round(rawOps.at(-1)!)} ops/s (concurrency ${CONCURRENCY}); one at a time: encrypt p50 ${p([encSeq.at(-1)!], 50)} ms vs raw ${p([rawEncSeq.at(-1)!], 50)} ms`,
    );
  }
  const batches = await (await fetch(`${tenant.plugin.metricsUrl}/metrics`)).text();
  const batchStat = (what: 'sum' | 'count') =>
    [...batches.matchAll(new RegExp(`^kms_plugin_transit_batch_size_${what}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce(
      (s, m) => s + Number(m[1]),
      0,
    );
  await tenant.stop();
  const pluginMedian = median(pluginOps);
  const rawMedian = median(rawOps);
  console.log(
    JSON.stringify({
      bench: 'kms',
      client: 'kms-load (grpc-go, k8s.io/kms v2 stubs; Transit over Go net/http)',
      baseline: "Transit encrypt/decrypt over HTTPS with the plugin role's own token",
      rounds: ROUNDS,
      plugin_node_options: process.env.KDC_PLUGIN_NODE_OPTIONS,
      status_calls: STATUS_CALLS,
      status_p50_ms: p([status], 50),
      status_p99_ms: p([status], 99),
      status_grpc_js_floor_p50_ms: p([floor], 50),
      status_grpc_js_floor_p99_ms: p([floor], 99),
      status_node_http2_floor_p50_ms: p([h2Floor], 50),
      status_node_http2_floor_p99_ms: p([h2Floor], 99),
      latency_concurrency: 1,
      encrypt_p50_ms: p(encSeq, 50),
      encrypt_p99_ms: p(encSeq, 99),
      decrypt_p50_ms: p(decSeq, 50),
      decrypt_p99_ms: p(decSeq, 99),
      raw_encrypt_p99_ms: p(rawEncSeq, 99),
      raw_decrypt_p99_ms: p(rawDecSeq, 99),
      concurrency: CONCURRENCY,
      loaded_encrypt_p50_ms: p(enc, 50),
      loaded_encrypt_p99_ms: p(enc, 99),
      loaded_decrypt_p50_ms: p(dec, 50),
      loaded_decrypt_p99_ms: p(dec, 99),
      loaded_raw_encrypt_p99_ms: p(rawEnc, 99),
      loaded_raw_decrypt_p99_ms: p(rawDec, 99),
      mean_transit_batch: round(batchStat('sum') / Math.max(1, batchStat('count')), 2),
      plugin_ops_per_s: Math.round(pluginMedian),
      raw_transit_ops_per_s: Math.round(rawMedian),
      plugin_vs_raw_ratio: round(pluginMedian / rawMedian),
      anchor_status_p99_ms: null,
      anchor_ops_per_s: null,
      ours_vs_anchor_ratio: null,
      anchor_unavailable:
        'github.com/FalcoSuessgott/vault-kubernetes-kms (and every other public Vault/OpenBao KMS v2 plugin module tried) is refused by this machine\'s Go module proxy: 403 "This module version is not available"',
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
