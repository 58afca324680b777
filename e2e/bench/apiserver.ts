// npm run bench:apiserver: a tenant kube-apiserver with the KMS v2 provider and our plugin vs the
// same apiserver with identity, side by side on one etcd. Prints one JSON line last. Two more
// sides show the floors: the same apiserver encrypting with a local aesgcm key (what encryption at
// rest costs inside the apiserver, whoever holds the key), and the same apiserver with KMS v2 and
// a plugin that costs nothing (kms-load's grpc-go server, which echoes): what KMS v2 itself costs
// inside the apiserver (a key derived per row from the DEK seed, the envelope's protobuf), which
// no plugin can take away. KMS v2 writes never call the plugin (a DEK seed per key_id, rotated only
// when it changes) and a cold list calls it once per seed.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { ensureBinaries } from '../src/binaries.ts';
import { writeAesgcmEncryptionConfig, writeKmsEncryptionConfig } from '../src/kms.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startKubeApiserver, type KubeApiserver } from '../src/kube-apiserver.ts';
import { metricValue } from '../src/metrics.ts';
import { startPlatform } from '../src/platform.ts';
import { startGrpcGoFloor } from './kms-floor.ts';
import { cpuSeconds, inParallel, median, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Secrets per side per turn: the sides take turns block by block within a round. */
const BLOCK = Number(process.env.BENCH_BLOCK ?? 250);
/** Cold restarts of each side, the first side rotating. */
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 5);
/**
 * The free plugin's rows: its ciphertext is the DEK seed (32 bytes) plus FLOOR_PAD, its key_id
 * FLOOR_KEY_ID_BYTES long (ours: 89 and 40, so BENCH_FLOOR_PAD=57 BENCH_FLOOR_KEY_ID_BYTES=40 stores
 * rows the size ours are).
 */
const FLOOR_PAD = Number(process.env.BENCH_FLOOR_PAD ?? 0);
const FLOOR_KEY_ID_BYTES = Number(process.env.BENCH_FLOOR_KEY_ID_BYTES ?? 64);
const SIDES = ['kms', 'identity', 'aesgcm', 'floor'] as const;
type Side = (typeof SIDES)[number];
type PerSide = Record<Side, number>;
type BlockTimes = Record<'create' | 'get', PerSide>;

const zero = (): PerSide => ({ kms: 0, identity: 0, aesgcm: 0, floor: 0 });
/** The sides in turn `turn`: each goes first, second and last alike. */
const inTurn = (turn: number) => SIDES.map((_, i) => SIDES[(i + turn) % SIDES.length]!);
const range = (values: number[]) => [round(Math.min(...values)), round(Math.max(...values))];

const pluginCalls = (metricsUrl: string, operation: 'encrypt' | 'decrypt') =>
  metricValue(
    metricsUrl,
    new RegExp(`kms_plugin_request_duration_seconds_count\\{operation="${operation}",code="OK"\\} (\\d+)`),
  );

const { 'kms-load': kmsLoad } = await ensureBinaries(['kms-load']);
const platform = await startPlatform({ installCrds: false });
try {
  const p = platform.state;
  const kms = await kmsTenant(p, { prefix: 'bench-api' });
  const aesgcmDir = join(p.dir, 'aesgcm-tenant');
  mkdirSync(aesgcmDir, { recursive: true });
  const aesgcmConfig = join(aesgcmDir, 'encryption-config.yaml');
  writeAesgcmEncryptionConfig(aesgcmConfig, 'bench');
  const floorDir = join(p.dir, 'floor-tenant');
  mkdirSync(floorDir, { recursive: true });
  const floorPlugin = await startGrpcGoFloor(kmsLoad, join(floorDir, 'kms.sock'), p.logDir, 'bench-floor-plugin', [
    '-pad',
    String(FLOOR_PAD),
    '-key-id-bytes',
    String(FLOOR_KEY_ID_BYTES),
  ]);
  const floorConfig = join(floorDir, 'encryption-config.yaml');
  writeKmsEncryptionConfig(floorConfig, join(floorDir, 'kms.sock'));
  const settings: Record<Side, { dir: string; prefix: string; extraArgs: string[] }> = {
    kms: {
      dir: kms.dir,
      prefix: kms.cluster,
      extraArgs: [`--encryption-provider-config=${join(kms.dir, 'encryption-config.yaml')}`],
    },
    identity: { dir: join(p.dir, 'identity-tenant'), prefix: 'identity-tenant', extraArgs: [] },
    aesgcm: { dir: aesgcmDir, prefix: 'aesgcm-tenant', extraArgs: [`--encryption-provider-config=${aesgcmConfig}`] },
    floor: { dir: floorDir, prefix: 'floor-tenant', extraArgs: [`--encryption-provider-config=${floorConfig}`] },
  };
  const start = (side: Side, generation: number) =>
    startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir: settings[side].dir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: `/${settings[side].prefix}`,
      name: `${settings[side].prefix}-apiserver-${generation}`,
      extraArgs: settings[side].extraArgs,
    });
  const servers: Record<Side, KubeApiserver> = {
    kms: kms.apiserver,
    identity: await start('identity', 1),
    aesgcm: await start('aesgcm', 1),
    floor: await start('floor', 1),
  };
  const clients: Record<Side, KubeClient> = {
    kms: kms.tenant,
    identity: KubeClient.fromFile(servers.identity.kubeconfig),
    aesgcm: KubeClient.fromFile(servers.aesgcm.kubeconfig),
    floor: KubeClient.fromFile(servers.floor.kubeconfig),
  };
  // What each side's writes cost in CPU: its apiserver, and for KMS our plugin (apart: on the
  // write path only when a DEK seed is made). The shared cores disturb it less than the wall clock.
  const cpu = { ...zero(), plugin: 0 };
  const encryptsBefore = await pluginCalls(kms.plugin.metricsUrl, 'encrypt');

  // Each round writes its own N Secrets in blocks of BLOCK, the sides taking turns block by block,
  // so a burst of load, etcd's growth or a compaction falls on every side alike (a whole round per
  // side put 0.43-1.10 between the runs' rounds, and 0.80-1.39 between identity and aesgcm).
  const blocks: BlockTimes[] = [];
  const rounds: BlockTimes[] = [];
  const blockCount = Math.ceil(N / BLOCK);
  for (let r = 0; r < ROUNDS; r++) {
    const total: BlockTimes = { create: zero(), get: zero() };
    for (let b = 0; b < blockCount; b++) {
      const first = b * BLOCK;
      const count = Math.min(BLOCK, N - first);
      const block: BlockTimes = { create: zero(), get: zero() };
      for (const phase of ['create', 'get'] as const) {
        for (const side of inTurn(r * blockCount + b)) {
          const c = clients[side];
          const cpu0 = cpuSeconds(servers[side].process.pid);
          const plugin0 = side === 'kms' ? cpuSeconds(kms.plugin.process.pid) : 0;
          block[phase][side] = await inParallel(count, CONCURRENCY, (i) => {
            const name = `s-${r}-${first + i}`;
            return phase === 'create'
              ? c.create(at(RESOURCES.secret, 'default'), {
                  apiVersion: 'v1',
                  kind: 'Secret',
                  metadata: { name },
                  stringData: { v: `value-${first + i}` },
                })
              : c.get(at(RESOURCES.secret, 'default', name));
          });
          if (phase === 'create') {
            cpu[side] += cpuSeconds(servers[side].process.pid) - cpu0;
            if (side === 'kms') cpu.plugin += cpuSeconds(kms.plugin.process.pid) - plugin0;
          }
          total[phase][side] += block[phase][side];
        }
      }
      blocks.push(block);
    }
    const line = (t: PerSide) => SIDES.map((s) => `${s} ${Math.round(t[s])}`).join(', ');
    console.error(`round ${r + 1}: create ${N} in ${line(total.create)} ms; get in ${line(total.get)} ms`);
    rounds.push(total);
  }
  const encryptsOnWrites = (await pluginCalls(kms.plugin.metricsUrl, 'encrypt')) - encryptsBefore;

  // Cold restart: a fresh apiserver has no DEK cache; its first list of every Secret decrypts
  // each DEK seed once through the plugin (KMS) and every row with its local key (aesgcm).
  const lists: PerSide[] = [];
  const decrypts: number[] = [];
  const listed = zero();
  for (let r = 0; r < RESTARTS; r++) {
    const list = zero();
    for (const side of inTurn(r)) {
      const before = side === 'kms' ? await pluginCalls(kms.plugin.metricsUrl, 'decrypt') : 0;
      await servers[side].stop();
      servers[side] = await start(side, r + 2);
      const t0 = performance.now();
      listed[side] = (
        await KubeClient.fromFile(servers[side].kubeconfig).list(at(RESOURCES.secret, 'default'))
      ).items.length;
      list[side] = performance.now() - t0;
      if (side === 'kms') decrypts.push((await pluginCalls(kms.plugin.metricsUrl, 'decrypt')) - before);
    }
    console.error(
      `restart ${r + 1}: list ${listed.kms} in ${SIDES.map((s) => `${Math.round(list[s])} ms (${s})`).join(', ')}`,
    );
    lists.push(list);
  }
  for (const side of SIDES) await servers[side].stop();
  await kms.plugin.stop();
  await floorPlugin.stop();

  // Speed ratios (`a_vs_b`: b's time / a's time, 1 = a costs nothing more) for writes and reads;
  // time ratios (a's time / b's) for the cold list, whose target is <= 1.2.
  const speed = (rows: PerSide[], a: Side, b: Side) => rows.map((r) => r[b] / r[a]);
  const slower = (rows: PerSide[], a: Side, b: Side) => rows.map((r) => r[a] / r[b]);
  const creates = rounds.map((r) => r.create);
  const blockCreates = blocks.map((b) => b.create);
  const gets = rounds.map((r) => r.get);
  const createRatios = speed(creates, 'kms', 'identity');
  const listRatios = slower(lists, 'kms', 'identity');
  const cpuMsPerCreate = (seconds: number) => round((seconds * 1000) / (N * ROUNDS), 4);
  const medianOf = (values: number[]) => round(median(values));
  const msOf = (rows: PerSide[], side: Side) => Math.round(median(rows.map((r) => r[side])));
  const withRange = (name: string, values: number[]) => ({
    [name]: medianOf(values),
    [`${name}_range`]: range(values),
  });
  const bySide = (prefix: string, value: (side: Side) => number) =>
    Object.fromEntries(SIDES.map((side) => [`${prefix}${side}`, value(side)]));
  console.log(
    JSON.stringify({
      bench: 'apiserver',
      secrets: N,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      block: BLOCK,
      restarts: RESTARTS,
      floor_ciphertext_bytes: 32 + FLOOR_PAD,
      floor_key_id_bytes: FLOOR_KEY_ID_BYTES,
      ...bySide('create_ms_', (side) => msOf(creates, side)),
      // identity time / KMS time, median of the rounds (target >= 0.95).
      create_ratio_kms_vs_identity: medianOf(createRatios),
      create_ratio_range: range(createRatios),
      // The same per block: the spread the machine adds between two sides' turns.
      create_ratio_blocks_median: medianOf(speed(blockCreates, 'kms', 'identity')),
      create_ratio_blocks_range: range(speed(blockCreates, 'kms', 'identity')),
      get_ratio_kms_vs_identity: medianOf(speed(gets, 'kms', 'identity')),
      // The floors, side by side: a local key, and KMS v2 with a plugin that costs nothing.
      ...withRange('create_ratio_aesgcm_vs_identity', speed(creates, 'aesgcm', 'identity')),
      ...withRange('create_ratio_floor_vs_identity', speed(creates, 'floor', 'identity')),
      // What our plugin costs a write beyond KMS v2 itself (1 = nothing).
      ...withRange('create_ratio_kms_vs_floor', speed(creates, 'kms', 'floor')),
      ...withRange('create_ratio_kms_vs_aesgcm', speed(creates, 'kms', 'aesgcm')),
      // CPU per create over every round (ms): each apiserver, and our plugin during the KMS turns.
      create_cpu_ms_kms_apiserver: cpuMsPerCreate(cpu.kms),
      create_cpu_ms_kms_plugin: cpuMsPerCreate(cpu.plugin),
      create_cpu_ms_identity: cpuMsPerCreate(cpu.identity),
      create_cpu_ms_aesgcm: cpuMsPerCreate(cpu.aesgcm),
      create_cpu_ms_floor_apiserver: cpuMsPerCreate(cpu.floor),
      create_cpu_ratio_kms_vs_identity: round(cpu.identity / (cpu.kms + cpu.plugin)),
      create_cpu_ratio_floor_vs_identity: round(cpu.identity / cpu.floor),
      create_cpu_ratio_aesgcm_vs_identity: round(cpu.identity / cpu.aesgcm),
      plugin_encrypt_calls_on_writes: encryptsOnWrites,
      ...bySide('list_after_restart_ms_', (side) => msOf(lists, side)),
      // KMS time / identity time of the first list after a restart (target <= 1.2), and the floors.
      list_after_restart_ratio: medianOf(listRatios),
      list_after_restart_range: range(listRatios),
      list_after_restart_ratio_aesgcm: medianOf(slower(lists, 'aesgcm', 'identity')),
      ...withRange('list_after_restart_ratio_floor', slower(lists, 'floor', 'identity')),
      // What our plugin costs a cold list beyond KMS v2 itself (1 = nothing).
      ...withRange('list_after_restart_ratio_kms_vs_floor', slower(lists, 'kms', 'floor')),
      ...bySide('listed_', (side) => listed[side]),
      decrypt_calls_on_restart: Math.max(...decrypts),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
