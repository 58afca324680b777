// npm run bench:apiserver: a tenant kube-apiserver with the KMS v2 provider vs the same
// apiserver with identity, side by side on one etcd. Prints one JSON line last. For writes a
// third side, the same apiserver encrypting with a local aesgcm key (no plugin), shows what
// encryption at rest costs inside the apiserver whoever holds the key: the floor for KMS, whose
// v2 writes never call the plugin (a DEK seed per key_id, rotated only when it changes).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { writeAesgcmEncryptionConfig } from '../src/kms.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startKubeApiserver } from '../src/kube-apiserver.ts';
import { startPlatform } from '../src/platform.ts';
import { inParallel, median, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SIDES = ['kms', 'identity'] as const;
type Side = (typeof SIDES)[number];
const WRITE_SIDES = ['kms', 'identity', 'aesgcm'] as const;
type WriteSide = (typeof WRITE_SIDES)[number];

const pluginCalls = async (metricsUrl: string, operation: 'encrypt' | 'decrypt') => {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const pattern = new RegExp(
    `kms_plugin_request_duration_seconds_count\\{operation="${operation}",code="OK"\\} (\\d+)`,
  );
  return Number(pattern.exec(text)?.[1] ?? 0);
};

const platform = await startPlatform({ installCrds: false });
try {
  const p = platform.state;
  const kms = await kmsTenant(p, { prefix: 'bench-api' });
  const identityDir = join(p.dir, 'identity-tenant');
  const startIdentity = () =>
    startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir: identityDir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: '/identity-tenant',
      name: 'identity-tenant',
    });
  let identity = await startIdentity();
  const aesgcmDir = join(p.dir, 'aesgcm-tenant');
  mkdirSync(aesgcmDir, { recursive: true });
  const aesgcmConfig = join(aesgcmDir, 'encryption-config.yaml');
  writeAesgcmEncryptionConfig(aesgcmConfig, 'bench');
  const aesgcm = await startKubeApiserver({
    binary: p.binaries['kube-apiserver'],
    dir: aesgcmDir,
    logDir: p.logDir,
    etcdEndpoint: p.etcd.endpoint,
    etcdPrefix: '/aesgcm-tenant',
    name: 'aesgcm-tenant',
    extraArgs: [`--encryption-provider-config=${aesgcmConfig}`],
  });
  const encryptsBefore = await pluginCalls(kms.plugin.metricsUrl, 'encrypt');
  // Rounds alternate which side goes first, so neither gets the warm or the cold etcd every time;
  // each round writes its own N Secrets (etcd keeps growing on both sides alike).
  const rounds: { create: Record<WriteSide, number>; get: Record<WriteSide, number> }[] = [];
  const writeClients: Record<WriteSide, KubeClient> = {
    kms: kms.tenant,
    identity: KubeClient.fromFile(identity.kubeconfig),
    aesgcm: KubeClient.fromFile(aesgcm.kubeconfig),
  };
  for (let r = 0; r < ROUNDS; r++) {
    const round: (typeof rounds)[number] = {
      create: { kms: 0, identity: 0, aesgcm: 0 },
      get: { kms: 0, identity: 0, aesgcm: 0 },
    };
    // Each round starts with the next side, so each goes first, second and last alike.
    const order = WRITE_SIDES.map((_, i) => WRITE_SIDES[(i + r) % WRITE_SIDES.length]!);
    for (const side of order) {
      const c = writeClients[side];
      round.create[side] = await inParallel(N, CONCURRENCY, (i) =>
        c.create(at(RESOURCES.secret, 'default'), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: `s-${r}-${i}` },
          stringData: { v: `value-${i}` },
        }),
      );
      round.get[side] = await inParallel(N, CONCURRENCY, (i) => c.get(at(RESOURCES.secret, 'default', `s-${r}-${i}`)));
      console.error(
        `round ${r + 1} ${side}: create ${N} in ${Math.round(round.create[side])} ms, get in ${Math.round(round.get[side])} ms`,
      );
    }
    rounds.push(round);
  }
  const encryptsOnWrites = (await pluginCalls(kms.plugin.metricsUrl, 'encrypt')) - encryptsBefore;
  await aesgcm.stop();

  // Cold restart: a fresh apiserver has no DEK cache; listing every Secret decrypts each seed once.
  const lists: Record<Side, number>[] = [];
  const decrypts: number[] = [];
  const listed = { kms: 0, identity: 0 };
  let kmsApiserver = kms.apiserver;
  for (let r = 0; r < ROUNDS; r++) {
    const list: Record<Side, number> = { kms: 0, identity: 0 };
    for (const side of r % 2 === 0 ? SIDES : [...SIDES].reverse()) {
      if (side === 'kms') {
        const before = await pluginCalls(kms.plugin.metricsUrl, 'decrypt');
        await kmsApiserver.stop();
        kmsApiserver = await startKubeApiserver({
          binary: p.binaries['kube-apiserver'],
          dir: kms.dir,
          logDir: p.logDir,
          etcdEndpoint: p.etcd.endpoint,
          etcdPrefix: `/${kms.cluster}`,
          name: `${kms.cluster}-apiserver-${r + 2}`,
          extraArgs: [`--encryption-provider-config=${join(kms.dir, 'encryption-config.yaml')}`],
        });
        const t0 = performance.now();
        listed.kms = (
          await KubeClient.fromFile(kmsApiserver.kubeconfig).list(at(RESOURCES.secret, 'default'))
        ).items.length;
        list.kms = performance.now() - t0;
        decrypts.push((await pluginCalls(kms.plugin.metricsUrl, 'decrypt')) - before);
      } else {
        await identity.stop();
        identity = await startIdentity();
        const t0 = performance.now();
        listed.identity = (
          await KubeClient.fromFile(identity.kubeconfig).list(at(RESOURCES.secret, 'default'))
        ).items.length;
        list.identity = performance.now() - t0;
      }
    }
    console.error(
      `restart ${r + 1}: list ${listed.kms} in ${Math.round(list.kms)} ms (kms), ${Math.round(list.identity)} ms (identity)`,
    );
    lists.push(list);
  }
  await kmsApiserver.stop();
  await identity.stop();
  await kms.plugin.stop();

  const ratios = (values: number[]) => ({
    median: round(median(values)),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
  });
  const createRatios = rounds.map((r) => r.create.identity / r.create.kms);
  const aesgcmCreateRatios = rounds.map((r) => r.create.identity / r.create.aesgcm);
  const kmsVsAesgcmRatios = rounds.map((r) => r.create.aesgcm / r.create.kms);
  const getRatios = rounds.map((r) => r.get.identity / r.get.kms);
  const listRatios = lists.map((l) => l.kms / l.identity);
  console.error(
    JSON.stringify({
      create: ratios(createRatios),
      create_aesgcm: ratios(aesgcmCreateRatios),
      create_kms_vs_aesgcm: ratios(kmsVsAesgcmRatios),
      get: ratios(getRatios),
      list_kms_over_identity: ratios(listRatios),
    }),
  );
  console.log(
    JSON.stringify({
      bench: 'apiserver',
      secrets: N,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      create_ms_kms: Math.round(median(rounds.map((r) => r.create.kms))),
      create_ms_identity: Math.round(median(rounds.map((r) => r.create.identity))),
      // identity time / KMS time, median of the rounds: 1 means the KMS provider costs nothing.
      create_ratio_kms_vs_identity: round(median(createRatios)),
      create_ratio_range: [round(Math.min(...createRatios)), round(Math.max(...createRatios))],
      get_ratio_kms_vs_identity: round(median(getRatios)),
      create_ms_aesgcm: Math.round(median(rounds.map((r) => r.create.aesgcm))),
      // The floor: identity time / local-aesgcm time; and aesgcm time / KMS time (our plugin's share).
      create_ratio_aesgcm_vs_identity: round(median(aesgcmCreateRatios)),
      create_ratio_aesgcm_vs_identity_range: [
        round(Math.min(...aesgcmCreateRatios)),
        round(Math.max(...aesgcmCreateRatios)),
      ],
      create_ratio_kms_vs_aesgcm: round(median(kmsVsAesgcmRatios)),
      create_ratio_kms_vs_aesgcm_range: [round(Math.min(...kmsVsAesgcmRatios)), round(Math.max(...kmsVsAesgcmRatios))],
      plugin_encrypt_calls_on_writes: encryptsOnWrites,
      list_after_restart_ms_kms: Math.round(median(lists.map((l) => l.kms))),
      list_after_restart_ms_identity: Math.round(median(lists.map((l) => l.identity))),
      // KMS time / identity time of the first list after a restart (target <= 1.2).
      list_after_restart_ratio: round(median(listRatios)),
      list_after_restart_range: [round(Math.min(...listRatios)), round(Math.max(...listRatios))],
      listed_kms: listed.kms,
      listed_identity: listed.identity,
      decrypt_calls_on_restart: Math.max(...decrypts),
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
