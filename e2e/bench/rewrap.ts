// npm run bench:rewrap (issue 12): BENCH_N (10,000) Secrets re-written by the product's own loop
// (k8-manager's rewritePage and Pacer: pages of MIGRATION_PAGE_SIZE, 4 writes in flight) through a
// tenant kube-apiserver with the KMS v2 plugin, against the same loop through a kube-apiserver
// writing with the identity provider, side by side on the platform etcd; then the coverage scan
// (scanCoverage) over the KMS tenant's rows. BENCH_ROUNDS (3) rounds, medians with min/max.
// Prints one JSON line last; progress goes to stderr.
//
// kube-apiserver skips the etcd write of an unchanged PUT unless the row it read is stale (read
// through a provider that is not the write provider, or, for KMS v2, under another key_id), so
// each timed pass first makes every row stale, the way a real migration finds them:
// - KMS: the Transit key rotates and the apiserver restarts, so it writes under the new key_id
//   at once (a running one adopts it at its next status poll, within a minute): a rewrap.
// - identity: the rows are stored with secretbox and the apiserver restarts with
//   [identity, secretbox], so every row is re-written as plaintext (the disable path).
// Every Secret's resourceVersion must move past the etcd revision taken before the pass (each
// row was really written), and after every KMS pass the scan must count every row current under
// the new key_id with 0 plaintext and 0 stale; otherwise the bench fails (exit 1).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { KubeClient, TenantApiClient, parseTenantKubeconfig, type KubeObject, RESOURCES } from '@kdc/shared';
import { openEtcdKvReader, scanCoverage } from '@kdc/shared/etcd';
// Not exported by @kdc/k8-manager: the migration's own source, so the bench measures its code.
import { Pacer, rewritePage } from '../../packages/k8-manager/src/migration/rewrite.ts';
import { kmsClient } from '../src/kms.ts';
import { kmsTenant } from '../src/kms-tenant.ts';
import { startKubeApiserver, type KubeApiserver } from '../src/kube-apiserver.ts';
import { startPlatform } from '../src/platform.ts';
import { waitFor } from '../src/wait.ts';
import { cpuSeconds, inParallel, median, round } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** k8-manager's MIGRATION_PAGE_SIZE default. */
const PAGE_SIZE = Number(process.env.BENCH_PAGE_SIZE ?? 200);
/** rewritePage's default, what the controller runs with. */
const IN_FLIGHT = 4;
/** Far above what one apiserver takes: the pacer never waits. */
const RATE = 100_000;
const CREATE_CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const RATIO_TARGET = 0.8;

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(`bench:rewrap: ${message}`);
}

const platform = await startPlatform({ installCrds: false });
const stops: { stop(): Promise<void> }[] = [];
try {
  const p = platform.state;
  const etcd = { endpoint: p.etcd.endpoint };
  const startApiserver = async (input: { dir: string; prefix: string; name: string; config: string }) => {
    const server = await startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir: input.dir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: input.prefix,
      name: input.name,
      extraArgs: [`--encryption-provider-config=${input.config}`],
    });
    stops.push(server);
    return server;
  };
  // The client k8-manager builds from a tenant's admin kubeconfig (observe-tenant.ts).
  const tenantClient = (server: KubeApiserver) =>
    new TenantApiClient(new URL(server.url), parseTenantKubeconfig(readFileSync(server.kubeconfig, 'utf8')));

  // KMS side: the real plugin against Transit, a tenant apiserver on /<cluster>.
  const kms = await kmsTenant(p, { prefix: 'bench-rewrap' });
  stops.push(kms);
  const plugin = kmsClient(kms.plugin.socket);
  stops.push({ stop: async () => plugin.close() });
  const kmsPrefix = `/${kms.cluster}`;
  const kmsConfig = join(kms.dir, 'encryption-config.yaml');

  // Identity side: its own prefix; `sealed` stores rows with secretbox, `identity` writes plaintext and reads both.
  const identityDir = join(p.dir, 'identity-rewrap');
  const identityPrefix = '/identity-rewrap';
  const secretbox = `      - secretbox:\n          keys:\n            - name: bench\n              secret: ${randomBytes(32).toString('base64')}`;
  const config = (providers: string[]) =>
    [
      'apiVersion: apiserver.config.k8s.io/v1',
      'kind: EncryptionConfiguration',
      'resources:',
      '  - resources: [secrets]',
      '    providers:',
      ...providers,
    ].join('\n');
  const sealedConfig = join(p.dir, 'identity-rewrap-sealed.yaml');
  const identityConfig = join(p.dir, 'identity-rewrap-identity.yaml');
  writeFileSync(sealedConfig, config([secretbox, '      - identity: {}']), { mode: 0o600 });
  writeFileSync(identityConfig, config(['      - identity: {}', secretbox]), { mode: 0o600 });
  let starts = 0;
  const startIdentity = (sealed: boolean) =>
    startApiserver({
      dir: identityDir,
      prefix: identityPrefix,
      name: `identity-rewrap-${starts++}`,
      config: sealed ? sealedConfig : identityConfig,
    });

  let kmsServer = kms.apiserver;
  let identityServer = await startIdentity(true);

  for (const [side, server] of [
    ['kms', kmsServer],
    ['identity', identityServer],
  ] as const) {
    // One keep-alive agent: a TLS handshake per Secret would make seeding the slowest part.
    const client = tenantClient(server);
    const agent = new HttpsAgent({ keepAlive: true, maxSockets: CREATE_CONCURRENCY });
    const ms = await inParallel(N, CREATE_CONCURRENCY, async (i) => {
      const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${i}` }, stringData: { v: `value-${i}` } };
      const created = await client.request('POST', '/api/v1/namespaces/default/secrets', {
        body,
        timeoutMs: 30_000,
        agent,
      });
      check(created.status === 201, `${side}: creating a Secret answered HTTP ${created.status}`);
    }).finally(() => agent.destroy());
    console.error(`${side}: created ${N} Secrets in ${Math.round(ms)} ms`);
  }

  /** Every Secret through the product's loop; checks that every row was written by it. */
  async function rewriteAll(side: string, server: KubeApiserver, prefix: string) {
    const client = tenantClient(server);
    const kube = KubeClient.fromFile(server.kubeconfig);
    await kube.list(RESOURCES.secret, { limit: 1 });
    const reader = openEtcdKvReader(etcd);
    const before = await reader.count(`${prefix}/secrets/`).finally(() => reader.close());
    const pacer = new Pacer(RATE);
    const totals = { rewritten: 0, skipped: 0, failed: 0, pages: 0 };
    let token: string | undefined;
    const cpu0 = cpuSeconds(server.process.pid);
    const t0 = performance.now();
    do {
      const page = await rewritePage(client, 'secrets', token, {
        limit: PAGE_SIZE,
        timeoutMs: 30_000,
        pacer,
        concurrency: IN_FLIGHT,
      });
      totals.rewritten += page.rewritten;
      totals.skipped += page.skipped;
      totals.failed += page.failed;
      totals.pages++;
      token = page.continue;
    } while (token);
    const seconds = (performance.now() - t0) / 1000;
    const cpuUsed = cpuSeconds(server.process.pid) - cpu0;
    // resourceVersion is the row's etcd mod_revision: every one must be newer than the pass.
    let listed = 0;
    let unwritten = 0;
    let next: string | undefined;
    do {
      const page = await kube.list<KubeObject>(RESOURCES.secret, { limit: 1000, ...(next ? { continue: next } : {}) });
      listed += page.items.length;
      unwritten += page.items.filter((s) => Number(s.metadata?.resourceVersion) <= before.revision).length;
      next = page.metadata.continue || undefined;
    } while (next);
    check(
      totals.failed === 0 && totals.skipped === 0,
      `${side}: ${totals.failed} writes failed and ${totals.skipped} were skipped`,
    );
    check(
      listed >= N && totals.rewritten === listed,
      `${side}: ${totals.rewritten} PUTs answered 200 for ${listed} Secrets (expected at least ${N})`,
    );
    check(
      unwritten === 0,
      `${side}: ${unwritten} of ${listed} Secrets were not written to etcd by the pass (their rows were not stale)`,
    );
    const rate = totals.rewritten / seconds;
    const cpuMsPer1000 = (cpuUsed * 1000 * 1000) / totals.rewritten;
    console.error(
      `${side}: re-wrote ${totals.rewritten} Secrets in ${totals.pages} pages in ${round(seconds, 2)} s: ${Math.round(rate)} objects/s, apiserver CPU ${Math.round(cpuMsPer1000)} ms per 1000, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`,
    );
    return { rate, rows: listed, cpuMsPer1000 };
  }

  const rates = { kms: [] as number[], identity: [] as number[], scan: [] as number[] };
  const cpu = { kms: [] as number[], identity: [] as number[] };
  let lastScan = { total: 0, current: 0, plaintext: 0, stale: 0 };
  let keyId = (await plugin.status()).key_id;

  const kmsRound = async (r: number) => {
    // Rotate; the plugin publishes the new key_id within its health interval (2 s).
    await kms.root.transit().rotate(kms.transitKey);
    const previous = keyId;
    keyId = await waitFor(
      'the plugin to publish the rotated key_id',
      async () => {
        const { key_id } = await plugin.status();
        return key_id !== previous ? key_id : undefined;
      },
      { timeoutMs: 30_000 },
    );
    await kmsServer.stop();
    kmsServer = await startApiserver({
      dir: kms.dir,
      prefix: kmsPrefix,
      name: `${kms.cluster}-apiserver-r${r}`,
      config: kmsConfig,
    });
    const { rate, rows, cpuMsPer1000 } = await rewriteAll('kms', kmsServer, kmsPrefix);
    rates.kms.push(rate);
    cpu.kms.push(cpuMsPer1000);

    const scan = await scanCoverage({
      connection: etcd,
      prefix: `${kmsPrefix}/`,
      resources: ['secrets'],
      currentKeyIds: [keyId],
    });
    const scanRate = scan.total / (Math.max(1, scan.durationMs) / 1000);
    rates.scan.push(scanRate);
    console.error(
      `scan: ${scan.total} rows (${scan.current} current, ${scan.stale} stale, ${scan.plaintext} plaintext, ${scan.foreign} foreign, ${scan.unreadable} unreadable) in ${scan.durationMs} ms: ${Math.round(scanRate)} rows/s`,
    );
    check(
      scan.total === rows &&
        scan.current === rows &&
        scan.plaintext === 0 &&
        scan.stale === 0 &&
        scan.foreign === 0 &&
        scan.unreadable === 0,
      `the scan after the KMS pass counted ${scan.current} current of ${scan.total} rows (${scan.plaintext} plaintext, ${scan.stale} stale, ${scan.foreign} foreign, ${scan.unreadable} unreadable) for ${rows} Secrets`,
    );
    lastScan = { total: scan.total, current: scan.current, plaintext: scan.plaintext, stale: scan.stale };
  };

  const identityRound = async (r: number) => {
    if (r > 0) {
      // Seal the rows again (untimed), so the timed pass finds every one stale.
      await identityServer.stop();
      identityServer = await startIdentity(true);
      await rewriteAll('identity (sealing again, untimed)', identityServer, identityPrefix);
    }
    await identityServer.stop();
    identityServer = await startIdentity(false);
    const { rate, rows, cpuMsPer1000 } = await rewriteAll('identity', identityServer, identityPrefix);
    rates.identity.push(rate);
    cpu.identity.push(cpuMsPer1000);
    const scan = await scanCoverage({
      connection: etcd,
      prefix: `${identityPrefix}/`,
      resources: ['secrets'],
      currentKeyIds: [],
    });
    check(
      scan.total === rows && scan.plaintext === rows,
      `after the identity pass ${scan.plaintext} of ${scan.total} rows are plaintext (expected ${rows})`,
    );
  };

  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which side goes first, so neither always runs on a warmer etcd.
    if (r % 2 === 0) {
      await kmsRound(r);
      await identityRound(r);
    } else {
      await identityRound(r);
      await kmsRound(r);
    }
    console.error(
      `round ${r + 1}: kms ${Math.round(rates.kms.at(-1)!)} objects/s vs identity ${Math.round(rates.identity.at(-1)!)} objects/s; scan ${Math.round(rates.scan.at(-1)!)} rows/s`,
    );
  }

  const stat = (values: number[]) => ({
    median: Math.round(median(values)),
    min: Math.round(Math.min(...values)),
    max: Math.round(Math.max(...values)),
  });
  const kmsRate = stat(rates.kms);
  const identityRate = stat(rates.identity);
  const scanRate = stat(rates.scan);
  const ratios = rates.kms.map((k, i) => k / rates.identity[i]!);
  console.log(
    JSON.stringify({
      bench: 'rewrap',
      secrets: N,
      rounds: ROUNDS,
      page_size: PAGE_SIZE,
      in_flight: IN_FLIGHT,
      method:
        "rewritePage+Pacer from k8-manager over every Secret; KMS rows made stale by a Transit rotation + apiserver restart, identity rows by secretbox -> [identity, secretbox] + restart; every row checked written (resourceVersion) and the scan proves all current; medians, min/max over rounds; ratio is the median of the per-round kms/identity ratios; apiserver_cpu_* is the tenant apiserver's own CPU per 1000 re-writes (less sensitive to a busy machine than the rates)",
      rewrap_objects_per_s: kmsRate.median,
      rewrap_objects_per_s_min: kmsRate.min,
      rewrap_objects_per_s_max: kmsRate.max,
      identity_objects_per_s: identityRate.median,
      identity_objects_per_s_min: identityRate.min,
      identity_objects_per_s_max: identityRate.max,
      // Each round's two passes ran minutes apart at most: the ratio of a round is the fair pair.
      ratio: round(median(ratios)),
      ratio_min: round(Math.min(...ratios)),
      ratio_max: round(Math.max(...ratios)),
      ratio_target: RATIO_TARGET,
      apiserver_cpu_ms_per_1000_kms: Math.round(median(cpu.kms)),
      apiserver_cpu_ms_per_1000_identity: Math.round(median(cpu.identity)),
      scan_objects_per_s: scanRate.median,
      scan_objects_per_s_min: scanRate.min,
      scan_objects_per_s_max: scanRate.max,
      scan_rows: lastScan.total,
      scan_current: lastScan.current,
      scan_plaintext: lastScan.plaintext,
      scan_stale: lastScan.stale,
    }),
  );
} finally {
  for (const s of stops.reverse()) await s.stop().catch(() => undefined);
  await platform.stop({ keepLogs: false });
}
