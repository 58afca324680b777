import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORE, KDC_API_VERSION, KMS_STORED_PREFIX, KubeClient, clusterNames, type KdcClusterStatus, type KubeObject } from '@kdc/shared';
import { decodeEncryptedObject } from '@kdc/shared/etcd';
import { startK8Manager, type K8ManagerProcess } from '../src/k8-manager.ts';
import { LOCAL_IMAGES } from '../src/images.ts';
import { startKamajiRunner, type KamajiRunner } from '../src/kamaji-runner.ts';
import { DATASTORE_REF, ETCD_IMAGE, dedicatedEtcdDataStore } from '../src/restore-fixture.ts';
import { waitFor } from '../src/wait.ts';
import { condition, controllerNamespace, createNamespace, kdc, management, openBaoRoot, platform, shardControllers, unique } from './helpers.ts';

// Issue 12: every stored row follows the configuration, proven on raw etcd bytes. A tenant with
// N plaintext Secrets turns encryption on; then its KEK rotates; then k8-manager is killed -9 in
// the middle of the re-write and a new one resumes from the checkpoint. After every step a
// checksum ledger of every Secret is compared (nothing lost, nothing changed) and the rows are
// read raw with etcdctl, independently of the controller's own scanner.

const N = Number(process.env.KDC_MIGRATION_N ?? 2000);
type Cluster = KubeObject & { status?: KdcClusterStatus & { conditions?: { type: string; status: string; reason: string; message: string }[] } };
type Secret = KubeObject & { data?: Record<string, string> };
const exec = promisify(execFile);

describe(`migration: ${N} plaintext Secrets -> enable -> rotate -> kill -9 mid-rewrap`, () => {
  const kube = management();
  const id = unique('mig');
  const cluster = 'shop';
  const names = clusterNames(cluster);
  const stops: { stop(): Promise<void> }[] = [];
  let ns: string;
  let runner: KamajiRunner;
  let manager: K8ManagerProcess;
  let tenant: KubeClient;
  let etcdctl: (...args: string[]) => Promise<string>;
  let ledger: Map<string, string>;
  const dataStore = `ds-${id}`;
  const k8ManagerEnv = { OBSERVE_PERIOD: '3s', MIGRATION_PAGE_SIZE: '250', MIGRATION_RATE: '1000' };

  const get = () => kube.get<Cluster>(kdc(ns, cluster));

  /** sha256 of every Secret's data, by namespace/name, read through the tenant apiserver. */
  async function readLedger(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await tenant.list<Secret>(CORE('secrets'), { limit: 500, ...(token ? { continue: token } : {}) });
      for (const s of page.items) out.set(`${s.metadata!.namespace}/${s.metadata!.name}`, createHash('sha256').update(JSON.stringify(s.data ?? {})).digest('hex'));
      token = page.metadata.continue || undefined;
    } while (token);
    return out;
  }

  /** Every Secret row of the tenant, read raw: plaintext, or KMS v2 with its key_id. */
  async function rawRows(): Promise<{ plaintext: number; byKeyId: Map<string, number>; total: number }> {
    const tcp = await kube.get<KubeObject & { status?: { storage?: { setup?: { schema?: string } } } }>({ group: 'kamaji.clastix.io', version: 'v1alpha1', plural: 'tenantcontrolplanes', namespace: ns, name: names.tenantControlPlane });
    const prefix = `/${tcp.status!.storage!.setup!.schema}/secrets/`;
    const answer = JSON.parse(await etcdctl('get', '--prefix', prefix, '-w', 'json')) as { kvs?: { value: string }[] };
    const byKeyId = new Map<string, number>();
    let plaintext = 0;
    for (const kv of answer.kvs ?? []) {
      const value = Buffer.from(kv.value, 'base64');
      if (!value.subarray(0, KMS_STORED_PREFIX.length).equals(Buffer.from(KMS_STORED_PREFIX))) {
        plaintext++;
        continue;
      }
      const keyId = decodeEncryptedObject(value.subarray(KMS_STORED_PREFIX.length)).keyID;
      byKeyId.set(keyId, (byKeyId.get(keyId) ?? 0) + 1);
    }
    return { plaintext, byKeyId, total: answer.kvs?.length ?? 0 };
  }

  const completed = (after: string) => waitFor('Encrypted=True/EncryptionCompleted, proven by a scan newer than the change', async () => {
    const c = await get();
    const scanned = c.status?.encryption?.coverage?.scannedAt;
    return condition(c, 'Encrypted')?.reason === 'EncryptionCompleted' && scanned && Date.parse(scanned) >= Date.parse(after) && !c.status?.encryption?.migration ? c : undefined;
  }, { timeoutMs: 420_000, intervalMs: 1000 });

  beforeAll(async () => {
    const p = platform();
    ns = await createNamespace(kube, 'mig');
    const dir = join(p.dir, id);
    mkdirSync(dir, { recursive: true });
    runner = await startKamajiRunner(p, { images: { ...LOCAL_IMAGES, [ETCD_IMAGE]: [p.binaries.etcd] }, namespaces: [ns] });
    stops.push(runner);
    const port = await dedicatedEtcdDataStore({ kube, runner, ns, dir, sts: `${id}-etcd`, dataStore });
    // etcdctl as a platform operator would run it, with the DataStore's own client certificate.
    const ds = await kube.get<KubeObject & { spec: { tlsConfig: { certificateAuthority: { certificate: { content: string } }; clientCertificate: { certificate: { content: string }; privateKey: { content: string } } } } }>(DATASTORE_REF(dataStore));
    const file = (name: string, b64: string) => {
      const path = join(dir, name);
      writeFileSync(path, Buffer.from(b64, 'base64'), { mode: 0o600 });
      return path;
    };
    const tls = ds.spec.tlsConfig;
    const flags = [`--endpoints=https://127.0.0.1:${port}`, `--cacert=${file('ca.pem', tls.certificateAuthority.certificate.content)}`, `--cert=${file('client.pem', tls.clientCertificate.certificate.content)}`, `--key=${file('client-key.pem', tls.clientCertificate.privateKey.content)}`];
    etcdctl = async (...args) => (await exec(p.binaries.etcdctl, [...flags, ...args], { maxBuffer: 512 * 2 ** 20 })).stdout;
    const [reconciler, k8m] = await shardControllers(id, k8ManagerEnv);
    stops.push(reconciler);
    manager = k8m;
    await kube.create(kdc(ns), {
      apiVersion: KDC_API_VERSION, kind: 'KdcCluster', metadata: { name: cluster, labels: { 'kdc-e2e/k8m': id } },
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, dataStore, backup: { enabled: false } },
    });
    const admin = await waitFor('the admin kubeconfig', async () => (await kube.getOrNull<KubeObject & { data: Record<string, string> }>(CORE('secrets', ns, `${names.tenantControlPlane}-admin-kubeconfig`))) ?? undefined, { timeoutMs: 180_000, intervalMs: 1000 });
    tenant = KubeClient.fromString(Buffer.from(admin.data['admin.conf']!, 'base64').toString('utf8'));
    // Its bootstrap controller creates the default namespace shortly after it serves.
    await waitFor('the tenant apiserver with its default namespace', async () => (await tenant.getOrNull(CORE('namespaces', undefined, 'default')).catch(() => null)) !== null, { timeoutMs: 120_000, intervalMs: 1000 });
    const write = async (i: number) => {
      const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${i}` }, stringData: { value: `migration-plaintext-${i}-${createHash('sha1').update(String(i)).digest('hex')}` } };
      // A young apiserver may drop a connection: try again, and take an earlier success as one.
      for (let attempt = 1; ; attempt++) {
        try {
          return await tenant.create(CORE('secrets', 'default'), body);
        } catch (error) {
          if ((error as { status?: number }).status === 409) return undefined;
          if (attempt === 5) throw error;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
    };
    for (let i = 0; i < N; i += 50) await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => write(i + j)));
    ledger = await readLedger();
    expect(ledger.size).toBeGreaterThanOrEqual(N);
    const before = await rawRows();
    expect(before.plaintext).toBe(before.total);
  }, 600_000);
  afterAll(async () => {
    await manager?.stop();
    for (const s of stops.reverse()) await s.stop();
    await kube.delete(DATASTORE_REF(dataStore)).catch(() => undefined);
  });

  it('enable: every existing row is re-written encrypted, proven by the scan and by raw etcd; nothing lost or changed', async () => {
    const enabledAt = new Date().toISOString();
    await kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd: { enabled: true } } } });
    const done = await completed(enabledAt);
    expect(condition(done, 'Encrypted')).toMatchObject({ status: 'True', message: 'All resources encrypted: secrets' });
    expect(done.status!.encryption!.coverage).toMatchObject({ plaintext: 0, stale: 0 });
    expect(done.status!.encryption!.coverage!.total).toBeGreaterThanOrEqual(N);
    const raw = await rawRows();
    expect(raw.plaintext).toBe(0);
    expect([...raw.byKeyId.keys()]).toEqual(done.status!.encryption!.coverage!.keyIds);
    expect(await readLedger()).toEqual(ledger);
    const events = await kube.list<KubeObject & { reason: string; involvedObject: { name: string } }>(CORE('events', ns));
    expect(events.items.filter((e) => e.involvedObject.name === cluster).map((e) => e.reason)).toEqual(expect.arrayContaining(['MigrationStarted', 'MigrationCompleted']));
  }, 600_000);

  it('rotation: the rows are re-wrapped under the new key_id without being asked; kill -9 in the middle resumes from the checkpoint', async () => {
    const before = await get();
    const oldKeyIds = before.status!.encryption!.coverage!.keyIds!;
    const kmsKey = before.status!.encryption!.resolvedKeyRef!;
    const transitKey = (await kube.get<KubeObject & { status: { keyId: string } }>({ group: 'security.kube-dc.com', version: 'v1alpha1', plural: 'kmskeys', namespace: ns, name: kmsKey })).status.keyId.split('/').pop()!;
    const rotatedAt = new Date().toISOString();
    // What the KMSKey controller does when a rotation is due.
    await openBaoRoot().transit().rotate(transitKey);

    // Wait for the re-write to be under way, then kill k8-manager without warning.
    const running = await waitFor('the rewrap to have re-written a page', async () => {
      const m = (await get()).status?.encryption?.migration;
      return m?.reason === 'rewrap' && m.rewritten > 0 && m.resource ? m : undefined;
    }, { timeoutMs: 240_000, intervalMs: 200 });
    await manager.process.kill();
    const after = (await get()).status!.encryption!.migration!;
    manager = await startK8Manager(platform(), { name: `k8m-${id}-2`, leaseNamespace: await controllerNamespace(kube), selector: `kdc-e2e/k8m=${id}`, env: k8ManagerEnv });
    // The new leader goes on from the checkpoint: the count never goes back, the pass does not restart.
    const resumed = await waitFor('the new k8-manager to move the checkpoint', async () => {
      const m = (await get()).status?.encryption?.migration;
      return !m || m.rewritten > after.rewritten ? m ?? 'finished' : undefined;
    }, { timeoutMs: 240_000, intervalMs: 200 });
    if (resumed !== 'finished') {
      expect(resumed.startedAt).toBe(running.startedAt);
      expect(resumed.rewritten).toBeGreaterThan(after.rewritten);
    }

    const done = await completed(rotatedAt);
    const newKeyIds = done.status!.encryption!.coverage!.keyIds!;
    expect(newKeyIds).not.toEqual(oldKeyIds);
    expect(done.status!.encryption!.lastRewrapCompleted).toBeDefined();
    expect(done.status!.encryption!.rewrapInProgress).toBe(false);
    const raw = await rawRows();
    expect(raw.plaintext).toBe(0);
    expect([...raw.byKeyId.keys()]).toEqual(newKeyIds);
    expect(await readLedger()).toEqual(ledger);
  }, 600_000);
});
