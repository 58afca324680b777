import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CORE,
  clusterNames,
  isAttached,
  type KdcClusterStatus,
  type KubeClient,
  type KubeObject,
  type TenantControlPlane,
  at,
  RESOURCES,
} from '@kdc/shared';
import { startLifecycleTenant, startReader, type LifecycleTenant } from '../src/lifecycle-tenant.ts';
import { TCP } from '../src/restore-fixture.ts';
import { rawRows, readLedger, tenantPrefix } from '../src/tenant-rows.ts';
import { waitFor } from '../src/wait.ts';
import { condition, createNamespace, kdc, management, platform, shardControllers, unique } from './helpers.ts';

// Issue 12, operations 3 and 6 on the real platform, raw etcd as the judge: configmaps added to
// the resources are migrated to KMS under a provider name of their own; dropped again they are
// decrypted first ([identity, kms] for them alone), proven by a scan, and only then leave the
// config, while secrets stay encrypted; enabled: false alone is refused and changes nothing;
// disableRequested decrypts every row of both, proves it, detaches the plugin, and then
// enabled: false is accepted. A reader lists Secrets and ConfigMaps through
// the tenant apiserver all along: no answer may be an error (the one replica restarting for a
// new config is counted apart: nothing answers then).

const SECRETS = Number(process.env.KDC_DISABLE_SECRETS ?? 300);
const CONFIGMAPS = Number(process.env.KDC_DISABLE_CONFIGMAPS ?? 100);
type Cluster = KubeObject & {
  spec: { encryption?: unknown };
  status?: KdcClusterStatus & { conditions?: { type: string; status: string; reason: string; message: string }[] };
};

describe(`resources and disable: ${SECRETS} Secrets, ${CONFIGMAPS} ConfigMaps`, () => {
  const kube = management();
  const id = unique('dis');
  const cluster = 'shop';
  const names = clusterNames(cluster);
  const seconds: Record<string, number> = {};
  let stage: LifecycleTenant;
  let ns: string;
  let tenant: KubeClient;
  let etcdctl: (...args: string[]) => Promise<string>;
  let prefix: string;
  let ledger: { secrets: Map<string, string>; configmaps: Map<string, string> };
  let reader: ReturnType<typeof startReader>;

  const get = () => kube.get<Cluster>(kdc(ns, cluster));
  const ours = (name: string) => name.startsWith('s-') || name.startsWith('c-');
  const ledgers = async () => ({
    secrets: await readLedger(tenant, 'secrets', ours),
    configmaps: await readLedger(tenant, 'configmaps', ours),
  });
  const encrypted = (after: string, message: string) =>
    waitFor(
      `Encrypted=True "${message}" from a scan newer than the change`,
      async () => {
        const c = await get();
        const e = condition(c, 'Encrypted');
        const scanned = c.status?.encryption?.coverage?.scannedAt;
        return e?.reason === 'EncryptionCompleted' &&
          e.message === message &&
          scanned &&
          Date.parse(scanned) >= Date.parse(after) &&
          !c.status?.encryption?.migration
          ? c
          : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 1000 },
    );
  const patch = (etcd: object) => kube.patch(kdc(ns, cluster), { spec: { encryption: { etcd } } });
  const timed = async <T>(phase: string, f: () => Promise<T>) => {
    const t0 = performance.now();
    const out = await f();
    seconds[phase] = Math.round((performance.now() - t0) / 100) / 10;
    return out;
  };

  beforeAll(async () => {
    ns = await createNamespace(kube, 'dis');
    stage = await startLifecycleTenant({
      state: platform(),
      kube,
      id,
      namespace: ns,
      cluster,
      spec: { version: 'v1.35.0', controlPlane: { replicas: 1 }, encryption: { etcd: { enabled: true } } },
      controllers: () => shardControllers(id, { OBSERVE_PERIOD: '3s', MIGRATION_RATE: '1000' }),
    });
    ({ tenant, etcdctl } = stage);
    await encrypted(new Date(0).toISOString(), 'All resources encrypted: secrets');
    const write = (resource: 'secrets' | 'configmaps', kind: string, name: string, i: number) =>
      tenant.create(CORE(resource, 'default'), {
        apiVersion: 'v1',
        kind,
        metadata: { name },
        data:
          resource === 'secrets'
            ? { v: Buffer.from(`lifecycle-${i}`).toString('base64') }
            : { v: createHash('sha1').update(String(i)).digest('hex') },
      });
    for (let i = 0; i < SECRETS; i += 50)
      await Promise.all(
        Array.from({ length: Math.min(50, SECRETS - i) }, (_, j) => write('secrets', 'Secret', `s-${i + j}`, i + j)),
      );
    for (let i = 0; i < CONFIGMAPS; i += 50)
      await Promise.all(
        Array.from({ length: Math.min(50, CONFIGMAPS - i) }, (_, j) =>
          write('configmaps', 'ConfigMap', `c-${i + j}`, i + j),
        ),
      );
    ledger = await ledgers();
    expect([ledger.secrets.size, ledger.configmaps.size]).toEqual([SECRETS, CONFIGMAPS]);
    prefix = await tenantPrefix(kube, ns, names.tenantControlPlane);
    expect(await rawRows(etcdctl, prefix, 'configmaps')).toMatchObject({
      total: expect.any(Number),
      byKeyId: new Map(),
    });

    reader = startReader(async () => {
      for (const resource of ['secrets', 'configmaps'] as const)
        await tenant.list(CORE(resource, 'default'), { limit: 500 });
    });
  }, 600_000);

  afterAll(async () => {
    const reads = await reader?.stop();
    console.log(
      JSON.stringify({
        test: 'disable',
        seconds,
        reads: { answered: reads?.answered, errors: reads?.errors.length, unreachable: reads?.unreachable },
      }),
    );
    await stage?.stop();
  });

  it('configmaps added: their plaintext rows are migrated to KMS', async () => {
    const since = new Date().toISOString();
    await timed('addConfigmaps', async () => {
      await patch({ resources: ['secrets', 'configmaps'] });
      await encrypted(since, 'All resources encrypted: configmaps, secrets');
    });
    const raw = await rawRows(etcdctl, prefix, 'configmaps');
    expect(raw.plaintext).toBe(0);
    expect(raw.total).toBeGreaterThanOrEqual(CONFIGMAPS);
    expect(await ledgers()).toEqual(ledger);
  }, 400_000);

  it('the plaintext revisions the migration left behind are named in status until etcd compacts past them', async () => {
    const history = (await get()).status!.encryption!.history!;
    expect(history.untilRevision).toBeGreaterThan(0);
    // Positive control: etcd's history still holds the row as it was written, in plaintext.
    const now = JSON.parse(await etcdctl('get', `${prefix}configmaps/default/c-0`, '-w', 'json')) as {
      kvs: { create_revision: number; value: string }[];
    };
    const created = now.kvs[0]!.create_revision;
    expect(Buffer.from(now.kvs[0]!.value, 'base64').toString('latin1')).toMatch(/^k8s:enc:kms:v2:/);
    const old = JSON.parse(
      await etcdctl('get', `${prefix}configmaps/default/c-0`, `--rev=${created}`, '-w', 'json'),
    ) as { kvs: { value: string }[] };
    expect(Buffer.from(old.kvs[0]!.value, 'base64').toString('latin1')).not.toMatch(/^k8s:enc:/);

    await etcdctl('compact', String(history.untilRevision));
    await expect(etcdctl('get', `${prefix}configmaps/default/c-0`, `--rev=${created}`)).rejects.toThrow(/compacted/);
    await waitFor(
      'status.encryption.history cleared after the compaction',
      async () => ((await get()).status?.encryption?.history ? undefined : true),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  }, 120_000);

  it('configmaps dropped: decrypted to plaintext and proven before KMS leaves them; secrets stay encrypted', async () => {
    const since = new Date().toISOString();
    await timed('dropConfigmaps', async () => {
      await patch({ resources: ['secrets'] });
      // The decrypt step is visible: configmaps are configured [identity, kms] until proven plaintext.
      await waitFor(
        'configmaps decrypting',
        async () => (await get()).status?.encryption?.decryptingResources?.includes('configmaps') || undefined,
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      await encrypted(since, 'All resources encrypted: secrets');
    });
    const c = await get();
    expect(c.status!.encryption).toMatchObject({ encryptedResources: ['secrets'], decryptingResources: [] });
    const raw = await rawRows(etcdctl, prefix, 'configmaps');
    expect(raw).toMatchObject({ plaintext: raw.total, byKeyId: new Map() });
    const secrets = await rawRows(etcdctl, prefix, 'secrets');
    expect(secrets.plaintext).toBe(0);
    expect([...secrets.providers.keys()]).toEqual(['kube-dc-kms-plugin']);
    const events = await kube.list<KubeObject & { reason: string; message: string; involvedObject: { name: string } }>(
      at(RESOURCES.event, ns),
    );
    expect(
      events.items.some(
        (e) =>
          e.involvedObject.name === cluster &&
          e.reason === 'MigrationStarted' &&
          /configmaps row to plaintext/.test(e.message),
      ),
    ).toBe(true);
    expect(await ledgers()).toEqual(ledger);
  }, 400_000);

  it('configmaps added again, under their own provider name', async () => {
    const since = new Date().toISOString();
    await timed('addConfigmapsAgain', async () => {
      await patch({ resources: ['secrets', 'configmaps'] });
      await encrypted(since, 'All resources encrypted: configmaps, secrets');
    });
    const raw = await rawRows(etcdctl, prefix, 'configmaps');
    expect(raw.plaintext).toBe(0);
    expect([...raw.providers.keys()]).toEqual(['kube-dc-kms-plugin-configmaps']);
    expect(await ledgers()).toEqual(ledger);
  }, 400_000);

  it('enabled: false alone is refused and changes nothing (positive control: the TCP is still attached, the rows still KMS)', async () => {
    const before = await kube.get<TenantControlPlane & KubeObject>(TCP(ns, names.tenantControlPlane));
    await patch({ enabled: false });
    const refused = await waitFor(
      'DisableRequiresMigration',
      async () => {
        const c = await get();
        return condition(c, 'EncryptionConfigError')?.reason === 'DisableRequiresMigration' ? c : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False', reason: 'DisableRequiresMigration' });
    const after = await kube.get<TenantControlPlane & KubeObject>(TCP(ns, names.tenantControlPlane));
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect(isAttached(after)).toBe(true);
    expect((await rawRows(etcdctl, prefix, 'secrets')).plaintext).toBe(0);
    await patch({ enabled: true });
  }, 120_000);

  it('disableRequested: every row decrypted and proven, the plugin detached; then enabled: false is accepted', async () => {
    await timed('disable', async () => {
      await patch({ enabled: true, disableRequested: true });
      const progress = new Set<number>();
      await waitFor(
        'Decrypted (KMS detached after the proof)',
        async () => {
          const c = await get();
          const p = c.status?.encryption?.disableMigrationProgress;
          if (typeof p === 'number') progress.add(p);
          return c.status?.phase === 'Decrypted' ? c : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 300 },
      );
      expect(Math.min(...progress)).toBeLessThan(100);
    });
    const c = await get();
    expect(c.status!.encryption!.disableMigrationProgress).toBe(100);
    expect(condition(c, 'Encrypted')).toMatchObject({ status: 'False', reason: 'DecryptionCompleted' });
    expect(condition(c, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'DecryptionCompleted',
      message: expect.stringContaining('enabled: false'),
    });
    expect(isAttached(await kube.get<TenantControlPlane & KubeObject>(TCP(ns, names.tenantControlPlane)))).toBe(false);
    for (const resource of ['secrets', 'configmaps']) {
      const raw = await rawRows(etcdctl, prefix, resource);
      expect(raw, resource).toMatchObject({ plaintext: raw.total, byKeyId: new Map() });
    }
    // The tenant apiserver without KMS reads every row (its new pod may still be starting).
    const back = await waitFor('the tenant apiserver without KMS', async () => ledgers().catch(() => undefined), {
      timeoutMs: 180_000,
      intervalMs: 1000,
    });
    expect(back).toEqual(ledger);

    await patch({ enabled: false, disableRequested: false });
    const off = await waitFor(
      'EncryptionDisabled',
      async () => {
        const x = await get();
        return condition(x, 'Encrypted')?.reason === 'EncryptionDisabled' ? x : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(condition(off, 'Ready')).toMatchObject({ status: 'True', reason: 'Reconciled' });
    expect(condition(off, 'EncryptionConfigError')).toMatchObject({ status: 'False' });
    expect(await ledgers()).toEqual(ledger);
    expect(reader.stats.errors).toEqual([]);
    expect(reader.stats.answered).toBeGreaterThan(25);
  }, 600_000);
});
