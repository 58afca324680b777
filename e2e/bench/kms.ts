// npm run bench:kms: our plugin over its socket, side by side with the best public plugin (the
// anchor: vault-kubernetes-kms, Go, built from ../shared/anchors) and with the same Transit
// operations over HTTPS, all driven by one Go load generator (kms-load: grpc-go and the k8s.io/kms
// stubs, kube-apiserver's own client stack) so that no side pays for a Node client, against one
// OpenBao, each plugin with its own token of the same least-privilege policy (the plugin role's).
// Prints one JSON line last.
//
// Latency is measured the way kube-apiserver calls the plugin: one call at a time (Encrypt once
// per DEK, Decrypt once per DEK cache miss, Status on its poll). Throughput and the ratios are
// measured at BENCH_CONCURRENCY callers too. Every round runs each measurement for every side,
// the order rotating from round to round, so machine noise hits all sides alike.
//
// Status floors, measured in the same rounds: an empty grpc-go KMS v2 server (kms-load serve), an
// empty grpc-js one (the server library the plugin used until it served on node:http2 itself,
// grpc-server.ts) and bare node:http2 answering a precomputed frame.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { loadKmsV2 } from '@kdc/kms-plugin';
import { OpenBaoClient, OPENBAO_K8S_AUTH_MOUNT, OPENBAO_TRANSIT_MOUNT } from '@kdc/shared';
import { ensureBinaries } from '../src/binaries.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startPlatform } from '../src/platform.ts';
import { freePort } from '../src/ports.ts';
import { ManagedProcess } from '../src/process.ts';
import { waitFor } from '../src/wait.ts';
import { startGrpcGoFloor } from './kms-floor.ts';
import { median, percentile, round } from './stats.ts';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
// Throughput is measured without a heap cap unless asked (the tests run the plugin capped at 64 MiB).
process.env.KDC_PLUGIN_NODE_OPTIONS ??= '';
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 4_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/**
 * Status calls are made in this many blocks per round, the sides taking turns block by block, so
 * that a burst of load on the shared machine falls on every side alike rather than on whichever
 * side was running (p99 pools every block of a side).
 */
const STATUS_BLOCKS = Number(process.env.BENCH_STATUS_BLOCKS ?? 5);
/** Sequential Status calls per side and round (the anchor's Status makes three Transit calls, so fewer). */
const STATUS_CALLS = Number(process.env.BENCH_STATUS_CALLS ?? 2_000);
const ANCHOR_STATUS_CALLS = Number(process.env.BENCH_ANCHOR_STATUS_CALLS ?? 300);

interface Run {
  latencies: number[];
  opsPerSecond: number;
}

const bins = await ensureBinaries(['kms-load', 'vault-kubernetes-kms']);
const kmsLoad = bins['kms-load'];
async function drive(mode: string, args: string[]): Promise<Run> {
  const { stdout } = await promisify(execFile)(kmsLoad, [mode, ...args], { maxBuffer: 1 << 28 });
  const result = JSON.parse(stdout) as { latencies_ms: number[]; seconds: number };
  return { latencies: result.latencies_ms, opsPerSecond: result.latencies_ms.length / result.seconds };
}
const sorted = (runs: Run[]) => runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
const p = (runs: Run[], q: number) => round(percentile(sorted(runs), q));

/** An empty Status handler in grpc-js (the plugin's server library before grpc-server.ts). */
async function grpcJsFloor(socket: string): Promise<() => void> {
  rmSync(socket, { force: true });
  const server = new Server();
  const status = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
    callback(null, { version: 'v2', healthz: 'ok', key_id: 'k'.repeat(64) });
  server.addService(loadKmsV2().service, { Status: status, Encrypt: status, Decrypt: status });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return () => server.forceShutdown();
}

/** Below grpc-js: node:http2 answering every stream with one precomputed Status response. */
async function http2Floor(socket: string): Promise<() => void> {
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
  return () => server.close();
}

const platform = await startPlatform({ installCrds: false });
try {
  const { state } = platform;
  const tenant = await kmsTenant(state, { prefix: 'bench', startApiserver: false });
  // Every side runs as the plugin's own identity (same role, same least-privilege policy), each
  // with its own token, so OpenBao does the same token and ACL work for all of them. Tokens go to
  // kms-load in a 0600 file and to the anchor in its environment, never on a command line.
  const anonymous = new OpenBaoClient({
    endpoint: state.openbao.url,
    caBundle: state.openbao.caPem,
    timeoutMs: 10_000,
  });
  const login = async () =>
    (
      await anonymous.loginKubernetes(
        OPENBAO_K8S_AUTH_MOUNT,
        tenant.role,
        readFileSync(tenant.tokenFile, 'utf8').trim(),
      )
    ).clientToken;
  const tokenFile = join(tenant.dir, 'bench-openbao-token');
  writeFileSync(tokenFile, await login(), { mode: 0o600 });
  const caFile = join(tenant.dir, 'bench-openbao-ca.pem');
  writeFileSync(caFile, state.openbao.caPem);

  const anchorSocket = join(tenant.dir, 'anchor.sock');
  const anchor = ManagedProcess.start({
    name: 'bench-anchor-vault-kubernetes-kms',
    binary: bins['vault-kubernetes-kms'],
    args: [
      `-socket=unix://${anchorSocket}`,
      `-vault-address=${state.openbao.url}`,
      `-vault-ca-cert=${caFile}`,
      '-auth-method=token',
      `-transit-mount=${OPENBAO_TRANSIT_MOUNT}`,
      `-transit-key=${tenant.transitKey}`,
      `-health-port=${await freePort()}`,
      '-disable-v1',
      '-force-socket-overwrite',
    ],
    env: { VAULT_KMS_TOKEN: await login() },
    logFile: join(state.logDir, 'bench-anchor-vault-kubernetes-kms.log'),
  });
  await waitFor('the anchor plugin to listen', () => {
    if (!anchor.running) throw new Error(`vault-kubernetes-kms exited:\n${anchor.tail()}`);
    return Promise.resolve(existsSync(anchorSocket));
  });

  const stops = [
    await grpcJsFloor(join(tenant.dir, 'floor-grpc-js.sock')),
    await http2Floor(join(tenant.dir, 'floor-h2.sock')),
  ];
  const goFloor = await startGrpcGoFloor(kmsLoad, join(tenant.dir, 'floor-grpc-go.sock'), state.logDir);

  const sides = {
    ours: ['-socket', tenant.plugin.socket],
    anchor: ['-socket', anchorSocket],
    raw: ['-addr', state.openbao.url, '-ca', caFile, '-token-file', tokenFile, '-key', tenant.transitKey],
  };
  const statusSides = {
    ours: { socket: tenant.plugin.socket, n: STATUS_CALLS },
    grpcGo: { socket: join(tenant.dir, 'floor-grpc-go.sock'), n: STATUS_CALLS },
    grpcJs: { socket: join(tenant.dir, 'floor-grpc-js.sock'), n: STATUS_CALLS },
    http2: { socket: join(tenant.dir, 'floor-h2.sock'), n: STATUS_CALLS },
    anchor: { socket: anchorSocket, n: ANCHOR_STATUS_CALLS },
  };
  type Side = keyof typeof sides;
  type StatusSide = keyof typeof statusSides;
  const mode = (side: Side, op: 'encrypt' | 'decrypt') => (side === 'raw' ? `transit-${op}` : op);
  const rotate = <T>(list: T[], by: number) => list.map((_, i) => list[(i + by) % list.length]!);

  const status = Object.fromEntries(Object.keys(statusSides).map((s) => [s, [] as Run[]])) as Record<StatusSide, Run[]>;
  const runs = (): Record<Side, Run[]> => ({ ours: [], anchor: [], raw: [] });
  const enc1 = runs(),
    dec1 = runs(),
    enc = runs(),
    dec = runs();
  const ops1 = { ours: [] as number[], anchor: [] as number[], raw: [] as number[] };
  const ops = { ours: [] as number[], anchor: [] as number[], raw: [] as number[] };
  const half = `${ROUND_MS / 2}ms`;
  for (let r = 0; r < ROUNDS; r++) {
    for (let b = 0; b < STATUS_BLOCKS; b++)
      for (const s of rotate(Object.keys(statusSides) as StatusSide[], r + b)) {
        const n = Math.ceil(statusSides[s].n / STATUS_BLOCKS);
        status[s].push(await drive('status', ['-socket', statusSides[s].socket, '-n', String(n)]));
      }
    for (const c of [1, CONCURRENCY]) {
      const [e, d] = c === 1 ? [enc1, dec1] : [enc, dec];
      for (const [op, into] of [
        ['encrypt', e],
        ['decrypt', d],
      ] as const)
        for (const side of rotate(Object.keys(sides) as Side[], r))
          into[side].push(await drive(mode(side, op), [...sides[side], '-c', String(c), '-duration', half]));
      for (const side of Object.keys(sides) as Side[])
        (c === 1 ? ops1 : ops)[side].push((e[side].at(-1)!.opsPerSecond + d[side].at(-1)!.opsPerSecond) / 2);
    }
    const line = (o: Record<Side, number[]>) =>
      `ours ${Math.round(o.ours.at(-1)!)}, anchor ${Math.round(o.anchor.at(-1)!)}, raw ${Math.round(o.raw.at(-1)!)} ops/s`;
    console.error(
      `round ${r + 1}/${ROUNDS}: c=${CONCURRENCY} ${line(ops)}; c=1 ${line(ops1)}; status p99 ours ${p(status.ours.slice(-STATUS_BLOCKS), 99)} ms, grpc-go floor ${p(status.grpcGo.slice(-STATUS_BLOCKS), 99)} ms`,
    );
  }
  const batches = await (await fetch(`${tenant.plugin.metricsUrl}/metrics`)).text();
  const batchStat = (what: 'sum' | 'count') =>
    [...batches.matchAll(new RegExp(`^kms_plugin_transit_batch_size_${what}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce(
      (s, m) => s + Number(m[1]),
      0,
    );
  for (const stop of stops) stop();
  await goFloor.stop();
  await anchor.stop();
  await tenant.stop();
  const med = (o: Record<Side, number[]>) => ({ ours: median(o.ours), anchor: median(o.anchor), raw: median(o.raw) });
  const loaded = med(ops);
  const single = med(ops1);
  console.log(
    JSON.stringify({
      bench: 'kms',
      client: 'kms-load (grpc-go, k8s.io/kms v2 stubs; Transit over Go net/http)',
      baseline: "Transit encrypt/decrypt over HTTPS with the plugin role's own token",
      anchor: 'vault-kubernetes-kms c3bc385fd531 (Go), token auth with its own token of the plugin role',
      anchor_note:
        'the anchor makes 3 Transit calls per Status (read key, encrypt, decrypt) and 2 per Encrypt (encrypt, read key); ours answers Status from memory and reads the key in the background',
      rounds: ROUNDS,
      plugin_node_options: process.env.KDC_PLUGIN_NODE_OPTIONS,
      status_calls: STATUS_CALLS * ROUNDS,
      status_blocks_per_round: STATUS_BLOCKS,
      status_p50_ms: p(status.ours, 50),
      status_p99_ms: p(status.ours, 99),
      grpc_go_status_floor_p50_ms: p(status.grpcGo, 50),
      grpc_go_status_floor_p99_ms: p(status.grpcGo, 99),
      status_p99_vs_grpc_go_floor: round(p(status.ours, 99) / p(status.grpcGo, 99), 2),
      status_grpc_js_floor_p50_ms: p(status.grpcJs, 50),
      status_grpc_js_floor_p99_ms: p(status.grpcJs, 99),
      status_node_http2_floor_p50_ms: p(status.http2, 50),
      status_node_http2_floor_p99_ms: p(status.http2, 99),
      anchor_status_calls: ANCHOR_STATUS_CALLS * ROUNDS,
      anchor_status_p50_ms: p(status.anchor, 50),
      anchor_status_p99_ms: p(status.anchor, 99),
      latency_concurrency: 1,
      encrypt_p50_ms: p(enc1.ours, 50),
      encrypt_p99_ms: p(enc1.ours, 99),
      decrypt_p50_ms: p(dec1.ours, 50),
      decrypt_p99_ms: p(dec1.ours, 99),
      anchor_encrypt_p50_ms: p(enc1.anchor, 50),
      anchor_encrypt_p99_ms: p(enc1.anchor, 99),
      anchor_decrypt_p50_ms: p(dec1.anchor, 50),
      anchor_decrypt_p99_ms: p(dec1.anchor, 99),
      raw_encrypt_p50_ms: p(enc1.raw, 50),
      raw_encrypt_p99_ms: p(enc1.raw, 99),
      raw_decrypt_p50_ms: p(dec1.raw, 50),
      raw_decrypt_p99_ms: p(dec1.raw, 99),
      plugin_ops_per_s_c1: Math.round(single.ours),
      anchor_ops_per_s_c1: Math.round(single.anchor),
      raw_transit_ops_per_s_c1: Math.round(single.raw),
      ours_vs_anchor_ratio_c1: round(single.ours / single.anchor),
      concurrency: CONCURRENCY,
      loaded_encrypt_p50_ms: p(enc.ours, 50),
      loaded_encrypt_p99_ms: p(enc.ours, 99),
      loaded_decrypt_p50_ms: p(dec.ours, 50),
      loaded_decrypt_p99_ms: p(dec.ours, 99),
      loaded_anchor_encrypt_p99_ms: p(enc.anchor, 99),
      loaded_anchor_decrypt_p99_ms: p(dec.anchor, 99),
      loaded_raw_encrypt_p99_ms: p(enc.raw, 99),
      loaded_raw_decrypt_p99_ms: p(dec.raw, 99),
      mean_transit_batch: round(batchStat('sum') / Math.max(1, batchStat('count')), 2),
      plugin_ops_per_s: Math.round(loaded.ours),
      anchor_ops_per_s: Math.round(loaded.anchor),
      raw_transit_ops_per_s: Math.round(loaded.raw),
      plugin_vs_raw_ratio: round(loaded.ours / loaded.raw),
      ours_vs_anchor_ratio: round(loaded.ours / loaded.anchor),
      // The same ratios per round (ours/anchor ops/s), to show their spread.
      ours_vs_anchor_ratio_rounds: ops.ours.map((o, i) => round(o / ops.anchor[i]!)),
      ours_vs_anchor_ratio_c1_rounds: ops1.ours.map((o, i) => round(o / ops1.anchor[i]!)),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
