// The coverage scanner on rows a real tenant kube-apiserver wrote through our KMS plugin, and
// `kubectl kdc keys min-decryption` reading a Kamaji-style DataStore over mutual TLS.
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KAMAJI_API_VERSION,
  KDC_API_VERSION,
  KDC_CLUSTER,
  KMS_KEY,
  KMSKEY_API_VERSION,
  TENANT_CONTROL_PLANE,
  transitKeyName,
  at,
  RESOURCES,
} from '@kdc/shared';
import { scanCoverage, type CoverageScan } from '@kdc/shared/etcd';
import { kdcEnv, runKdc } from '../src/cli-harness.ts';
import { keyIdOf, kmsRow, plaintextRow, startTlsEtcd, type TlsEtcd } from '../src/etcd-tls.ts';
import { ISOLATED_LABEL } from '../src/encryption-reconciler.ts';
import { waitFor } from '../src/wait.ts';
import { createNamespace, management, openBaoRoot, platform, unique } from './helpers.ts';
import { useKmsTenant } from './kms-fixture.ts';

describe('coverage scan of a tenant apiserver writing through the KMS plugin', () => {
  const kms = useKmsTenant('cov');
  const SECRETS = 12;
  const scan = (currentKeyIds: string[]): Promise<CoverageScan> =>
    scanCoverage({
      connection: { endpoint: platform().etcd.endpoint },
      prefix: `/${kms.t.cluster}/`,
      resources: ['secrets', 'configmaps'],
      currentKeyIds,
    });

  beforeAll(async () => {
    for (let i = 0; i < SECRETS; i++) {
      await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `s-${i}` },
        stringData: { password: `pw-${i}` },
      });
    }
    for (let i = 0; i < 3; i++)
      await kms.t.tenant.create(at(RESOURCES.configMap, 'default'), {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `c-${i}` },
        data: { k: `v${i}` },
      });
  }, 60_000);

  it('secrets are current under the key_id the plugin publishes, configmaps (not configured) plaintext; a rotation makes every row stale', async () => {
    const first = (await kms.client.status()).key_id;
    // The apiserver's own listing is the ground truth for how many rows there are.
    const listed = async () => ({
      secrets: (await kms.t.tenant.list(RESOURCES.secret)).items.length,
      configmaps: (await kms.t.tenant.list(RESOURCES.configMap)).items.length,
    });
    const { before, counts } = await waitFor(
      'the scan to agree with the apiserver listing',
      async () => {
        const counts = await listed();
        const before = await scan([first]);
        return before.byResource.secrets?.total === counts.secrets &&
          before.byResource.configmaps?.total === counts.configmaps
          ? { before, counts }
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(counts.secrets).toBeGreaterThanOrEqual(SECRETS);
    expect(before).toMatchObject({
      total: counts.secrets + counts.configmaps,
      current: counts.secrets,
      stale: 0,
      plaintext: counts.configmaps,
      foreign: 0,
      unreadable: 0,
      byKeyId: { [first]: counts.secrets },
      byResource: {
        secrets: { total: counts.secrets, current: counts.secrets, plaintext: 0 },
        configmaps: { total: counts.configmaps, plaintext: counts.configmaps, current: 0 },
      },
    });
    expect(before.prefixKeys).toBeGreaterThan(before.total);

    await kms.t.root.transit().rotate(kms.t.transitKey);
    const second = await waitFor(
      'the plugin to publish the rotated key_id',
      async () => {
        const { key_id } = await kms.client.status();
        return key_id !== first ? key_id : undefined;
      },
      { timeoutMs: 15_000 },
    );
    // Nothing was re-written: every encrypted row now waits for a rewrap under the new key_id.
    expect(await scan([second])).toMatchObject({
      current: 0,
      stale: counts.secrets,
      plaintext: counts.configmaps,
      byKeyId: { [first]: counts.secrets },
    });
    // While two replicas publish both key_ids (mid-rotation), both count as current.
    expect(await scan([first, second])).toMatchObject({ current: counts.secrets, stale: 0 });
  }, 90_000);
});

describe('kubectl kdc keys min-decryption over mutual TLS (a Kamaji-style DataStore)', () => {
  const p = platform();
  const kube = management();
  const root = openBaoRoot().transit();
  const kmsKey = 'tenant-key';
  const cluster = unique('c');
  const uid = randomUUID();
  const prefix = `/${uid}/`;
  let t: TlsEtcd;
  let namespace = '';
  let transitKey = '';
  let env: Record<string, string> = {};
  const tcpRef = () => ({ ...RESOURCES.tenantControlPlane, namespace });
  const clusterRef = () => ({ ...RESOURCES.kdcCluster, namespace });
  const kdc = (...args: string[]) => runKdc([...args, '-n', namespace], env);
  const tls = () => [
    '--etcd-endpoint',
    t.etcd.endpoint,
    '--etcd-ca-file',
    t.ca.certFile,
    '--etcd-cert-file',
    t.client.certFile,
    '--etcd-key-file',
    t.client.keyFile,
  ];
  const newCluster = (name: string) =>
    kube.create(clusterRef(), {
      apiVersion: KDC_API_VERSION,
      kind: KDC_CLUSTER.kind,
      metadata: { name, labels: { [ISOLATED_LABEL]: 'true' } },
      spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true, keyRef: kmsKey } }, backup: { enabled: false } },
    });

  beforeAll(async () => {
    const dir = join(p.dir, unique('cov-cli'));
    mkdirSync(dir, { recursive: true });
    t = await startTlsEtcd(p, dir, unique('cov-cli'));
    namespace = await createNamespace(kube, 'cov-cli');
    transitKey = transitKeyName(namespace, kmsKey);
    env = kdcEnv(p, dir);
    await kube.create(
      { ...RESOURCES.kmsKey, namespace },
      { apiVersion: KMSKEY_API_VERSION, kind: KMS_KEY.kind, metadata: { name: kmsKey }, spec: { purpose: 'etcd' } },
    );
    await root.createKey(transitKey);
    await root.rotate(transitKey);
    await newCluster(cluster);
    // Kamaji >= 26.7.4 names the prefix after the TCP's UID and reports it in status.storage.setup.schema.
    await kube.create(tcpRef(), {
      apiVersion: KAMAJI_API_VERSION,
      kind: TENANT_CONTROL_PLANE.kind,
      metadata: { name: `${cluster}-cp` },
      spec: {
        dataStoreSchema: uid,
        controlPlane: { deployment: { replicas: 1 }, service: { serviceType: 'ClusterIP' } },
        kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
        networkProfile: { port: 6443 },
      },
    });
    await kube.patch(
      { ...tcpRef(), name: `${cluster}-cp`, subresource: 'status' },
      { status: { storage: { driver: 'etcd', setup: { schema: uid } } } },
      'merge',
    );
    await t.writer.putMany([
      { key: `${prefix}secrets/default/old-1`, value: kmsRow(keyIdOf('kdc2', 1, 'A')) },
      { key: `${prefix}configmaps/default/old-2`, value: kmsRow(keyIdOf('kdc1', 1, 'B')) },
      { key: `${prefix}secrets/default/new`, value: kmsRow(keyIdOf('kdc2', 2, 'A')) },
      { key: `${prefix}secrets/default/plain`, value: plaintextRow() },
    ]);
  }, 120_000);
  afterAll(async () => t?.stop());

  it('refuses while rows under v1 remain (also in a resource no longer configured), names an unknown prefix, and allows once they are gone', async () => {
    const refused = await kdc('keys', 'min-decryption', kmsKey, '--to', '2', ...tls());
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toContain(
      `etcd rows of cluster ${cluster} under ${prefix} still use v1 (2 rows): run "kubectl kdc rewrap-etcd ${cluster} -n ${namespace}"`,
    );
    expect(refused.stdout).toMatch(new RegExp(`${cluster}\\s+${prefix}\\s+4\\s+v1:2 v2:1\\s+1\\s+0\\s+0`));
    expect(refused.stdout + refused.stderr).not.toContain('503');

    // Without the client certificate, etcd refuses the handshake: unprovable, with what to check.
    const noCert = await kdc(
      'keys',
      'min-decryption',
      kmsKey,
      '--to',
      '2',
      '--etcd-endpoint',
      t.etcd.endpoint,
      '--etcd-ca-file',
      t.ca.certFile,
    );
    expect(noCert.code).toBe(1);
    expect(noCert.stderr).toMatch(
      new RegExp(
        `cannot read the rows under ${prefix}: etcd ${t.etcd.endpoint}: .*certificate required.*--etcd-cert-file`,
      ),
    );

    // A cluster whose TenantControlPlane does not exist has no prefix to read: unprovable, not guessed.
    const other = unique('c');
    await newCluster(other);
    const unknown = await kdc('keys', 'min-decryption', kmsKey, '--to', '2', ...tls());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      `etcd rows of cluster ${other}: TenantControlPlane ${namespace}/${other}-cp does not exist: its etcd prefix is unknown`,
    );
    await kube.delete({ ...clusterRef(), name: other });

    for (const key of ['secrets/default/old-1', 'configmaps/default/old-2'])
      await t.writer.deleteKey(`${prefix}${key}`);
    const dry = await kdc('keys', 'min-decryption', kmsKey, '--to', '2', ...tls());
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would set min_decryption_version of ${transitKey} to 2`);
    expect((await root.readKey(transitKey))!.minDecryptionVersion).toBe(1);
  }, 120_000);
});
