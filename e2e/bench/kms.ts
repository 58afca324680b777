// npm run bench:kms: the plugin over its socket vs the same Transit operations over HTTP, at the
// same concurrency, interleaved in the same run. Prints one JSON line last.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OpenBaoClient, OPENBAO_K8S_AUTH_MOUNT } from '@kdc/shared';
import { kmsClient } from '../src/kms.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startPlatform } from '../src/platform.ts';
import { load, median, percentile, round } from './stats.ts';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
// Throughput is measured without a heap cap unless asked (the tests run the plugin capped at 64 MiB).
process.env.KDC_PLUGIN_NODE_OPTIONS ??= '';
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 5_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const platform = await startPlatform({ installCrds: false });
try {
  const tenant = await kmsTenant(platform.state, { prefix: 'bench', startApiserver: false });
  const client = kmsClient(tenant.plugin.socket);
  // The baseline uses the plugin's own identity (same role, same policy), so OpenBao does the
  // same token and ACL work on both sides.
  const anonymous = new OpenBaoClient({ endpoint: platform.state.openbao.url, caBundle: platform.state.openbao.caPem, timeoutMs: 10_000 });
  const login = await anonymous.loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, tenant.role, readFileSync(tenant.tokenFile, 'utf8').trim());
  const raw = anonymous.withToken(login.clientToken).transit();
  const seed = randomBytes(32);
  const { key_id } = await client.status();
  const sample = await client.encrypt(seed);
  const rawSample = await raw.encrypt(tenant.transitKey, seed);

  // Status: sequential, as the apiserver and its health probes call it.
  const statusLatencies: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    const t0 = performance.now();
    await client.status();
    statusLatencies.push(performance.now() - t0);
  }
  statusLatencies.sort((a, b) => a - b);

  const pluginOps: number[] = [];
  const rawOps: number[] = [];
  const enc: number[][] = [];
  const dec: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate so that machine noise hits both sides alike.
    const e = await load(() => client.encrypt(seed), CONCURRENCY, ROUND_MS / 2);
    const d = await load(() => client.decrypt({ ciphertext: sample.ciphertext, key_id }), CONCURRENCY, ROUND_MS / 2);
    enc.push(e.latencies);
    dec.push(d.latencies);
    pluginOps.push((e.opsPerSecond + d.opsPerSecond) / 2);
    const re = await load(() => raw.encrypt(tenant.transitKey, seed), CONCURRENCY, ROUND_MS / 2);
    const rd = await load(() => raw.decrypt(tenant.transitKey, rawSample.ciphertext), CONCURRENCY, ROUND_MS / 2);
    rawOps.push((re.opsPerSecond + rd.opsPerSecond) / 2);
    console.error(`round ${r + 1}: plugin ${Math.round(pluginOps.at(-1)!)} ops/s, raw transit ${Math.round(rawOps.at(-1)!)} ops/s`);
  }
  const encAll = enc.flat().sort((a, b) => a - b);
  const decAll = dec.flat().sort((a, b) => a - b);
  client.close();
  await tenant.stop();
  const plugin = median(pluginOps);
  const rawMedian = median(rawOps);
  console.log(JSON.stringify({
    bench: 'kms',
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    plugin_node_options: process.env.KDC_PLUGIN_NODE_OPTIONS,
    baseline: 'Transit encrypt/decrypt over HTTPS with the plugin role\'s own token',
    status_p99_ms: round(percentile(statusLatencies, 99)),
    encrypt_p50_ms: round(percentile(encAll, 50)),
    encrypt_p99_ms: round(percentile(encAll, 99)),
    decrypt_p50_ms: round(percentile(decAll, 50)),
    decrypt_p99_ms: round(percentile(decAll, 99)),
    plugin_ops_per_s: Math.round(plugin),
    raw_transit_ops_per_s: Math.round(rawMedian),
    plugin_vs_raw_ratio: round(plugin / rawMedian),
    anchor_status_p99_ms: null,
    anchor_ops_per_s: null,
    ours_vs_anchor_ratio: null,
    anchor_unavailable: 'github.com/FalcoSuessgott/vault-kubernetes-kms is refused by this machine\'s Go module proxy ("This path is not available")',
  }));
} finally {
  await platform.stop({ keepLogs: false });
}
