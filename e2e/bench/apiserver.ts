// npm run bench:apiserver: a tenant kube-apiserver with the KMS v2 provider vs the same
// apiserver with identity, side by side on one etcd. Prints one JSON line last.
import { join } from 'node:path';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startKubeApiserver } from '../src/kube-apiserver.ts';
import { startPlatform } from '../src/platform.ts';
import { inParallel, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 1_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

const decryptCalls = async (metricsUrl: string) => {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  return Number(
    /kms_plugin_request_duration_seconds_count\{operation="decrypt",code="OK"\} (\d+)/.exec(text)?.[1] ?? 0,
  );
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
  const sides = { kms: () => kms.tenant, identity: () => KubeClient.fromFile(identity.kubeconfig) };
  const times: Record<string, { create: number; get: number; list: number }> = {};
  for (const [side, client] of Object.entries(sides)) {
    const c = client();
    const create = await inParallel(N, CONCURRENCY, (i) =>
      c.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `s-${i}` },
        stringData: { v: `value-${i}` },
      }),
    );
    const get = await inParallel(N, CONCURRENCY, (i) => c.get(at(RESOURCES.secret, 'default', `s-${i}`)));
    times[side] = { create, get, list: 0 };
    console.error(`${side}: create ${N} in ${Math.round(create)} ms, get in ${Math.round(get)} ms`);
  }

  // Cold restart: a fresh apiserver has no DEK cache; listing every Secret decrypts each seed once.
  const before = await decryptCalls(kms.plugin.metricsUrl);
  await kms.apiserver.stop();
  const restarted = await startKubeApiserver({
    binary: p.binaries['kube-apiserver'],
    dir: kms.dir,
    logDir: p.logDir,
    etcdEndpoint: p.etcd.endpoint,
    etcdPrefix: `/${kms.cluster}`,
    name: `${kms.cluster}-apiserver-2`,
    extraArgs: [`--encryption-provider-config=${join(kms.dir, 'encryption-config.yaml')}`],
  });
  let t0 = performance.now();
  const listed = await KubeClient.fromFile(restarted.kubeconfig).list(at(RESOURCES.secret, 'default'));
  times.kms!.list = performance.now() - t0;
  const decrypts = (await decryptCalls(kms.plugin.metricsUrl)) - before;
  await identity.stop();
  identity = await startIdentity();
  t0 = performance.now();
  const listedIdentity = await KubeClient.fromFile(identity.kubeconfig).list(at(RESOURCES.secret, 'default'));
  times.identity!.list = performance.now() - t0;
  await restarted.stop();
  await identity.stop();
  await kms.plugin.stop();

  console.log(
    JSON.stringify({
      bench: 'apiserver',
      secrets: N,
      concurrency: CONCURRENCY,
      create_ms_kms: Math.round(times.kms!.create),
      create_ms_identity: Math.round(times.identity!.create),
      create_ratio_kms_vs_identity: round(times.identity!.create / times.kms!.create),
      get_ratio_kms_vs_identity: round(times.identity!.get / times.kms!.get),
      list_after_restart_ms_kms: Math.round(times.kms!.list),
      list_after_restart_ms_identity: Math.round(times.identity!.list),
      list_after_restart_ratio: round(times.identity!.list / times.kms!.list),
      listed_kms: listed.items.length,
      listed_identity: listedIdentity.items.length,
      decrypt_calls_on_restart: decrypts,
    }),
  );
} finally {
  await platform.stop({ keepLogs: false });
}
