import { createHash, randomInt } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KDC_API_VERSION,
  KubeClient,
  clusterNames,
  type KdcClusterStatus,
  type KubeObject,
  at,
  RESOURCES,
} from '@kdc/shared';
import { versionOfKeyId } from '@kdc/shared/etcd';
import { kdcEnv, runKdc } from '../src/cli-harness.ts';
import { startK8Manager, type K8ManagerProcess } from '../src/k8-manager.ts';
import { LOCAL_IMAGES } from '../src/images.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { ETCD_IMAGE, dedicatedEtcdDataStore } from '../src/restore-fixture.ts';
import {
  dataStoreAccess,
  rawRows as rawResourceRows,
  readLedger as readSecretsLedger,
  tenantPrefix,
} from '../src/tenant-rows.ts';
import { waitFor } from '../src/wait.ts';
import {
  condition,
  controllerNamespace,
  createNamespace,
  kdc,
  management,
  openBaoRoot,
  platform,
  shardControllers,
  unique,
} from './helpers.ts';

// Issue 12: every stored row follows the configuration, proven on raw etcd bytes. A tenant with
// N plaintext Secrets turns encryption on; then its KEK rotates three times (Transit v1 -> v4),
// each rotation re-wrapped without being asked; then `kubectl kdc keys min-decryption --to 4`
// finds no row below v4 (and refused while the last rewrap had not run). k8-manager is killed -9
// at a random point of every migration (issue 12 test 7) and a new one resumes from the
// checkpoint. After every step a checksum ledger of every Secret is compared (nothing lost,
// nothing changed) and the rows are read raw with etcdctl, independently of the controller's
// own scanner.
//
// The kill points come from KDC_MIGRATION_SEED (random unless set; printed first), so a failure
// replays with the same points: KDC_MIGRATION_SEED=<seed> npx vitest run --root e2e tests/migration.test.ts

const N = Number(process.env.KDC_MIGRATION_N ?? 2000);
const SEED = Number(process.env.KDC_MIGRATION_SEED ?? randomInt(2 ** 31));
const ROTATIONS = 3;
type Migration = NonNullable<NonNullable<KdcClusterStatus['encryption']>['migration']>;
type Cluster = KubeObject & {
  status?: KdcClusterStatus & { conditions?: { type: string; status: string; reason: string; message: string }[] };
};

/** mulberry32: a small seeded generator, so the kill points replay from the printed seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = seeded(SEED);
/** After how many re-written objects (1..N-1) each migration is killed: [enable, rotation 1, 2, 3]. */
const KILL_AT = Array.from({ length: 1 + ROTATIONS }, () => 1 + Math.floor(random() * Math.max(1, N - 1)));

describe(`migration: ${N} plaintext Secrets -> enable -> ${ROTATIONS} rotations -> min-decryption --to ${ROTATIONS + 1}, kill -9 in every migration`, () => {
  const kube = management();
  const id = unique('mig');
  const cluster = 'shop';
  const names = clusterNames(cluster);
  const stops: { stop(): Promise<void> }[] = [];
  let ns: string;
  let runner: KamajiRunner;
  let manager: K8ManagerProcess;
  let managers = 1;
  let tenant: KubeClient;
  let etcdctl: (...args: string[]) => Promise<string>;
  /** The DataStore's endpoint and client certificate, as a platform operator passes them to the CLI. */
  let etcdFlags: string[];
  let cliEnv: Record<string, string>;
  let ledger: Map<string, string>;
  let transitKey: string;
  let kmsKey: string;
  const dataStore = `ds-${id}`;
  const k8ManagerEnv = { OBSERVE_PERIOD: '3s', MIGRATION_PAGE_SIZE: '250', MIGRATION_RATE: '1000' };
  /** Every checkpoint this test saw, in order: it must never go back. */
  const observed: { at: number; m: Migration }[] = [];

  const get = async () => {
    const c = await kube.get<Cluster>(kdc(ns, cluster));
    const m = c.status?.encryption?.migration;
    if (m) observed.push({ at: Date.now(), m });
    return c;
  };
  const seconds = (since: number) => Math.round((Date.now() - since) / 100) / 10;
  /** RFC 3339 in status has whole seconds: `t` at or after the second `since` falls in. */
  const notBefore = (t: string | undefined, since: number) =>
    t !== undefined && Date.parse(t) >= Math.floor(since / 1000) * 1000;

  const readLedger = () => readSecretsLedger(tenant, 'secrets');
  /** Every Secret row of the tenant, read raw: plaintext, or KMS v2 with its key_id. */
  const rawRows = async () =>
    rawResourceRows(etcdctl, await tenantPrefix(kube, ns, names.tenantControlPlane), 'secrets');

  /** Encrypted=True/EncryptionCompleted under Transit `version`, proven by a scan and a finished migration newer than `since`. */
  const completed = (since: number, version: number) =>
    waitFor(
      `Encrypted=True/EncryptionCompleted under Transit v${version}, proven by a scan newer than the change`,
      async () => {
        const c = await get();
        const e = c.status?.encryption;
        const keyIds = e?.coverage?.keyIds ?? [];
        return condition(c, 'Encrypted')?.reason === 'EncryptionCompleted' &&
          notBefore(e?.coverage?.scannedAt, since) &&
          notBefore(e?.lastRewrapCompleted, since) &&
          !e?.migration &&
          keyIds.length > 0 &&
          keyIds.every((k) => versionOfKeyId(k) === version)
          ? c
          : undefined;
      },
      { timeoutMs: 420_000, intervalMs: 1000 },
    );

  /**
   * kill -9 k8-manager once the `reason` migration begun after `since` has re-written at least
   * `threshold` objects (or right away if it finished first), start a new one, and check that it
   * goes on from the checkpoint: same startedAt, the count only moves forward.
   */
  async function killMidMigration(phase: string, since: number, reason: Migration['reason'], threshold: number) {
    const seen = await waitFor(
      `${phase}: the ${reason} migration to re-write ${threshold} objects (or finish)`,
      async () => {
        const e = (await get()).status?.encryption;
        const m = e?.migration;
        if (m?.reason === reason && notBefore(m.startedAt, since) && m.rewritten >= threshold) return m;
        return !m && notBefore(e?.lastRewrapCompleted, since) ? 'finished' : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 200 },
    );
    await manager.process.kill();
    const atKill = (await get()).status?.encryption?.migration;
    manager = await startK8Manager(platform(), {
      name: `k8m-${id}-${++managers}`,
      leaseNamespace: await controllerNamespace(kube),
      selector: `kdc-e2e/k8m=${id}`,
      env: k8ManagerEnv,
    });
    const kill = {
      threshold,
      at: atKill
        ? {
            rewritten: atKill.rewritten,
            total: atKill.total,
            pass: atKill.pass,
            resource: atKill.resource ?? 'pass ended',
          }
        : 'after the migration finished',
    };
    if (!atKill) return kill;
    if (seen !== 'finished') expect(atKill.startedAt).toBe(seen.startedAt);
    // The new leader goes on from the checkpoint: the count never goes back, the pass does not restart.
    const resumed = await waitFor(
      `${phase}: the new k8-manager to move the checkpoint`,
      async () => {
        const m = (await get()).status?.encryption?.migration;
        return !m || m.rewritten > atKill.rewritten ? (m ?? 'finished') : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 200 },
    );
    if (resumed !== 'finished') {
      expect(resumed.startedAt).toBe(atKill.startedAt);
      expect(resumed.rewritten).toBeGreaterThan(atKill.rewritten);
    }
    return kill;
  }

  /** What the test saw of the checkpoint since `since`: one migration, its counts never going back. */
  function expectCheckpointNeverWentBack(since: number) {
    const seen = observed.filter((o) => o.at >= since).map((o) => o.m);
    expect(
      new Set(seen.map((m) => m.startedAt)).size,
      'one migration per phase: no kill restarted it',
    ).toBeLessThanOrEqual(1);
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.rewritten, `checkpoint ${i} of ${seen.length}: rewritten went back`).toBeGreaterThanOrEqual(
        seen[i - 1]!.rewritten,
      );
      expect(seen[i]!.pass).toBeGreaterThanOrEqual(seen[i - 1]!.pass);
    }
    return seen.length;
  }

  /** Every raw row under Transit `version`, the scan agreeing, the ledger unchanged. */
  async function expectAllRowsAt(done: Cluster, version: number) {
    const keyIds = done.status!.encryption!.coverage!.keyIds!;
    expect(done.status!.encryption!.coverage).toMatchObject({ plaintext: 0, stale: 0 });
    expect(done.status!.encryption!.coverage!.total).toBeGreaterThanOrEqual(N);
    const raw = await rawRows();
    expect(raw.plaintext).toBe(0);
    expect(raw.total).toBeGreaterThanOrEqual(N);
    expect([...raw.byKeyId.keys()]).toEqual(keyIds);
    expect(keyIds.map(versionOfKeyId)).toEqual([version]);
    expect(await readLedger()).toEqual(ledger);
    return raw;
  }

  const minDecryption = (to: number) =>
    runKdc(['keys', 'min-decryption', kmsKey, '--to', String(to), ...etcdFlags, '-n', ns], cliEnv);

  beforeAll(async () => {
    const started = Date.now();
    console.log(
      JSON.stringify({ migrationSeed: SEED, killAfterRewritten: { enable: KILL_AT[0], rotations: KILL_AT.slice(1) } }),
    );
    const p = platform();
    ns = await createNamespace(kube, 'mig');
    const dir = join(p.dir, id);
    mkdirSync(dir, { recursive: true });
    runner = await startKamajiRunner(p, {
      images: { ...LOCAL_IMAGES, [ETCD_IMAGE]: [p.binaries.etcd] },
      namespaces: [ns],
    });
    stops.push(runner);
    const port = await dedicatedEtcdDataStore({ kube, runner, ns, dir, sts: `${id}-etcd`, dataStore });
    // etcdctl as a platform operator would run it, with the DataStore's own client certificate.
    const access = await dataStoreAccess({ kube, etcdctl: p.binaries.etcdctl, dataStore, port, dir });
    etcdctl = access.etcdctl;
    etcdFlags = [
      '--etcd-endpoint',
      access.endpoint,
      '--etcd-ca-file',
      access.ca,
      '--etcd-cert-file',
      access.cert,
      '--etcd-key-file',
      access.key,
    ];
    cliEnv = kdcEnv(p, dir);
    const [reconciler, k8m] = await shardControllers(id, k8ManagerEnv);
    stops.push(reconciler);
    manager = k8m;
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION,
      kind: 'KdcCluster',
      metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, dataStore, backup: { enabled: false } },
    });
    const admin = await waitFor(
      'the admin kubeconfig',
      async () =>
        (await kube.getOrNull<KubeObject & { data: Record<string, string> }>(
          at(RESOURCES.secret, ns, `${names.tenantControlPlane}-admin-kubeconfig`),
        )) ?? undefined,
      { timeoutMs: 180_000, intervalMs: 1000 },
    );
    tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    // Its bootstrap controller creates the default namespace shortly after it serves.
    await waitFor(
      'the tenant apiserver with its default namespace',
      async () => (await tenant.getOrNull(at(RESOURCES.namespace, undefined, 'default')).catch(() => null)) !== null,
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const write = async (i: number) => {
      const body = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `s-${i}` },
        stringData: { value: `migration-plaintext-${i}-${createHash('sha1').update(String(i)).digest('hex')}` },
      };
      // A young apiserver may drop connections, or be restarted by its liveness probe on a loaded
      // machine: try again for ~20 s, and take an earlier success as one.
      for (let attempt = 1; ; attempt++) {
        try {
          return await tenant.create(at(RESOURCES.secret, 'default'), body);
        } catch (error) {
          if ((error as { status?: number }).status === 409) return undefined;
          if (attempt === 10) throw error;
          await new Promise((r) => setTimeout(r, Math.min(500 * attempt, 3000)));
        }
      }
    };
    for (let i = 0; i < N; i += 50)
      await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => write(i + j)));
    ledger = await waitFor('the ledger of the Secrets written', () => readLedger(), { timeoutMs: 60_000 });
    expect(ledger.size).toBeGreaterThanOrEqual(N);
    const before = await rawRows();
    expect(before.plaintext).toBe(before.total);
    console.log(JSON.stringify({ migrationPhase: 'setup', seconds: seconds(started), secrets: ledger.size }));
  }, 600_000);
  afterAll(async () => {
    await manager?.stop();
    for (const s of stops.reverse()) await s.stop();
    await kube.delete(at(RESOURCES.dataStore, undefined, dataStore)).catch(() => undefined);
  });

  it('enable: every existing row is re-written encrypted (kill -9 at a random point resumes from the checkpoint), proven by the scan and by raw etcd; nothing lost or changed', async () => {
    const started = Date.now();
    await kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd: { enabled: true } } } });
    const kill = await killMidMigration('enable', started, 'enable', KILL_AT[0]!);
    const done = await completed(started, 1);
    const checkpoints = expectCheckpointNeverWentBack(started);
    expect(condition(done, 'Encrypted')).toMatchObject({ status: 'True', message: 'All resources encrypted: secrets' });
    await expectAllRowsAt(done, 1);
    kmsKey = done.status!.encryption!.resolvedKeyRef!;
    transitKey = (await kube.get({ ...RESOURCES.kmsKey, namespace: ns, name: kmsKey }))
      .status!.keyId!.split('/')
      .pop()!;
    expect(await openBaoRoot().transit().readKey(transitKey)).toMatchObject({
      latestVersion: 1,
      minDecryptionVersion: 1,
    });
    const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, ns),
    );
    expect(events.items.filter((e) => e.involvedObject.name === cluster).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['MigrationStarted', 'MigrationCompleted']),
    );
    console.log(JSON.stringify({ migrationPhase: 'enable', seconds: seconds(started), kill, checkpoints }));
  }, 600_000);

  for (let round = 1; round <= ROTATIONS; round++) {
    const version = round + 1;
    const last = round === ROTATIONS;
    it(`rotation ${round} (Transit v${version}): every row is re-wrapped under the new key_id without being asked; kill -9 at a random point resumes from the checkpoint${last ? `; min-decryption --to ${version} refuses until then` : ''}`, async () => {
      const started = Date.now();
      // What the KMSKey controller does when a rotation is due.
      await openBaoRoot().transit().rotate(transitKey);
      expect((await openBaoRoot().transit().readKey(transitKey))!.latestVersion).toBe(version);
      // The positive control, started at once: every row is still under v(version-1) until the
      // apiserver adopts the new key_id (its own poll, up to a minute) and the pass re-writes them.
      const refusal = last ? minDecryption(version) : undefined;
      refusal?.catch(() => undefined); // awaited below; not unhandled if the kill fails first
      const kill = await killMidMigration(`rotation ${round}`, started, 'rewrap', KILL_AT[round]!);
      if (refusal) {
        const refused = await refusal;
        expect(refused.code, refused.stdout + refused.stderr).toBe(1);
        expect(refused.stderr).toContain(
          `refused: min_decryption_version of ${transitKey} stays 1; it cannot become ${version} while:`,
        );
        expect(refused.stderr).toMatch(
          new RegExp(
            `etcd rows of cluster ${cluster} under ${await tenantPrefix(kube, ns, names.tenantControlPlane)} still use v${version - 1} \\(\\d+ rows?\\): run "kubectl kdc rewrap-etcd ${cluster} -n ${ns}"`,
          ),
        );
      }
      const done = await completed(started, version);
      const checkpoints = expectCheckpointNeverWentBack(started);
      expect(done.status!.encryption!.lastRewrapCompleted).toBeDefined();
      expect(done.status!.encryption!.rewrapInProgress).toBe(false);
      await expectAllRowsAt(done, version);
      console.log(
        JSON.stringify({ migrationPhase: `rotation ${round}`, seconds: seconds(started), kill, checkpoints }),
      );
    }, 600_000);
  }

  it(`kubectl kdc keys min-decryption --to ${ROTATIONS + 1} finds no row below v${ROTATIONS + 1} and allows the advance`, async () => {
    const started = Date.now();
    const to = ROTATIONS + 1;
    const prefix = await tenantPrefix(kube, ns, names.tenantControlPlane);
    const raw = await rawRows();
    const dry = await minDecryption(to);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    // The CLI reads secrets and configmaps: every KMS row is under v4, the others (configmaps) plaintext.
    expect(dry.stdout).toMatch(
      new RegExp(`${cluster}\\s+${prefix}\\s+\\d+\\s+v${to}:${raw.total}\\s+\\d+\\s+0\\s+0\\n`),
    );
    expect(dry.stdout).toContain(`no backup and no etcd row needs a version below ${to} of ${transitKey}`);
    expect(dry.stdout).toContain(`would set min_decryption_version of ${transitKey} to ${to}`);
    expect(dry.stderr).not.toContain('refused');
    expect((await openBaoRoot().transit().readKey(transitKey))!.minDecryptionVersion).toBe(1);

    const confirmed = await runKdc(
      ['keys', 'min-decryption', kmsKey, '--to', String(to), '--confirm', ...etcdFlags, '-n', ns],
      cliEnv,
    );
    expect(confirmed.code, confirmed.stdout + confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toContain(`min_decryption_version of ${transitKey} set to ${to}`);
    expect((await openBaoRoot().transit().readKey(transitKey))!.minDecryptionVersion).toBe(to);
    expect(await readLedger()).toEqual(ledger);
    console.log(JSON.stringify({ migrationPhase: 'min-decryption', seconds: seconds(started) }));
  }, 120_000);
});
