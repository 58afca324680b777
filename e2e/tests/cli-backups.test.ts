// kubectl-kdc against the real platform: backups list/rewrap/restore on a KdcCluster whose
// backups are real envelope backups of the platform etcd, and the min_decryption_version
// pre-flight refusing while a backup or an etcd row still needs an old Transit key version.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENVELOPE_OBJECTS, envelopePrefix, etcdSnapshotSource, listBackups, runBackup } from '@kdc/backup-envelope';
import {
  ANNOTATIONS,
  API_VERSION,
  BACKUP_CREDENTIAL_KEYS,
  DEFAULT_BACKUP_CREDENTIAL_SECRET,
  KDC_API_VERSION,
  KDC_CLUSTER,
  KDC_GROUP,
  KAMAJI_API_VERSION,
  KMS_KEY,
  KMS_STORED_PREFIX,
  KMSKEY_API_VERSION,
  TENANT_CONTROL_PLANE,
  transitKeyName,
  type KubeObject,
  type ResourceRef,
  at,
  RESOURCES,
} from '@kdc/shared';
import { backupStore } from '../src/backup-harness.ts';
import { deleteRaw, kdcEnv, putRaw, runKdc, startKdc } from '../src/cli-harness.ts';
import { ISOLATED_LABEL } from '../src/encryption-reconciler.ts';
import { createNamespace, management, openBaoRoot, platform, unique } from './helpers.ts';

const clusterRef = (namespace: string, name?: string): ResourceRef => ({
  group: KDC_GROUP,
  version: API_VERSION,
  plural: KDC_CLUSTER.plural,
  namespace,
  ...(name ? { name } : {}),
});
const kmsKeyRef = (namespace: string): ResourceRef => ({ ...RESOURCES.kmsKey, namespace });

/** A KMS v2 EncryptedObject written by hand (every length < 128: one-byte varints). */
function encryptedObject(keyID: string): Buffer {
  const field = (n: number, bytes: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes]);
  return Buffer.concat([
    field(1, Buffer.alloc(40, 0x5a)),
    field(2, Buffer.from(keyID)),
    field(3, Buffer.alloc(60, 0x11)),
    Buffer.from([5 << 3, 1]),
  ]);
}

describe('kubectl kdc backups and keys min-decryption', () => {
  const p = platform();
  const kube = management();
  const root = openBaoRoot().transit();
  const dir = join(p.dir, unique('cli-backups'));
  const kmsKey = 'tenant-key';
  const cluster = unique('c');
  let namespace = '';
  let transitKey = '';
  let env: Record<string, string> = {};
  let prefix = '';
  const keys: string[] = [];
  const kdc = (...args: string[]) => runKdc([...args, '-n', namespace], env);
  const annotations = async () =>
    (await kube.get<KubeObject>(clusterRef(namespace, cluster))).metadata?.annotations ?? {};
  /** What k8-manager does as a restore runs: its record in status.restore, then the annotation showing it. */
  const setState = async (state: string | null, from?: string) => {
    const key = from ?? (await annotations())[ANNOTATIONS.restoreFrom];
    await kube.patch(
      { ...clusterRef(namespace, cluster), subresource: 'status' },
      { status: { restore: state && key ? { key, state } : null } },
      'merge',
    );
    await kube.patch(
      clusterRef(namespace, cluster),
      {
        metadata: {
          annotations: { [ANNOTATIONS.restoreState]: state, ...(from ? { [ANNOTATIONS.restoreFrom]: from } : {}) },
        },
      },
      'merge',
    );
  };

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    namespace = await createNamespace(kube, 'cli-bk');
    transitKey = transitKeyName(namespace, kmsKey);
    prefix = `/${namespace}_${cluster}-cp/`;
    env = kdcEnv(p, dir);
    await kube.create(at(RESOURCES.secret, namespace), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: DEFAULT_BACKUP_CREDENTIAL_SECRET },
      stringData: {
        [BACKUP_CREDENTIAL_KEYS.accessKeyId]: p.s3.accessKeyId,
        [BACKUP_CREDENTIAL_KEYS.secretAccessKey]: p.s3.secretAccessKey,
        [BACKUP_CREDENTIAL_KEYS.region]: p.s3.region,
      },
    });
    // Encryption on with an explicit key; no controller serves this cluster (isolated label).
    await kube.create(clusterRef(namespace), {
      apiVersion: KDC_API_VERSION,
      kind: KDC_CLUSTER.kind,
      metadata: { name: cluster, labels: { [ISOLATED_LABEL]: 'true' } },
      spec: {
        version: 'v1.35.0',
        encryption: { etcd: { enabled: true, keyRef: kmsKey } },
        backup: { destinationPath: `s3://${p.s3.bucket}/` },
      },
    });
    await kube.create(kmsKeyRef(namespace), {
      apiVersion: KMSKEY_API_VERSION,
      kind: KMS_KEY.kind,
      metadata: { name: kmsKey },
      spec: { purpose: 'etcd' },
    });
    // Kamaji names the etcd prefix (status.storage.setup.schema); the CLI reads it from there.
    const tcp = { ...RESOURCES.tenantControlPlane, namespace };
    await kube.create(tcp, {
      apiVersion: KAMAJI_API_VERSION,
      kind: TENANT_CONTROL_PLANE.kind,
      metadata: { name: `${cluster}-cp` },
      spec: {
        dataStoreSchema: prefix.slice(1, -1),
        controlPlane: { deployment: { replicas: 1 }, service: { serviceType: 'ClusterIP' } },
        kubernetes: { version: 'v1.35.0', kubelet: { cgroupfs: 'systemd' } },
        networkProfile: { port: 6443 },
      },
    });
    await kube.patch(
      { ...tcp, name: `${cluster}-cp`, subresource: 'status' },
      { status: { storage: { driver: 'etcd', setup: { schema: prefix.slice(1, -1) } } } },
      'merge',
    );
    // The KMSKey controller may or may not be running: create the Transit key either way.
    await root.createKey(transitKey);
    const store = backupStore(p);
    const base = Date.now() - 600_000;
    for (let v = 1; v <= 3; v++) {
      if (v > 1) await root.rotate(transitKey);
      const { key, metadata } = await runBackup({
        store,
        transit: root,
        transitKey,
        cluster,
        namespace,
        source: etcdSnapshotSource({ endpoint: p.etcd.endpoint }),
        now: new Date(base + v * 1000),
      });
      expect(metadata.transitKeyVersion).toBe(v);
      keys.push(key);
    }
    // An upload that never finished: listed as incomplete, never restorable.
    const incomplete = envelopePrefix(cluster, new Date(base + 10_000));
    await store.client.send(
      new PutObjectCommand({ Bucket: p.s3.bucket, Key: incomplete + ENVELOPE_OBJECTS.snapshot, Body: 'partial' }),
    );
    store.destroy();
  }, 240_000);

  it('lists the backups with their Transit key versions, warnings and the lowest version needed', async () => {
    const list = await kdc('backups', 'list', cluster);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.split('\n');
    expect(lines[0]).toMatch(/^KEY\s+CREATED\s+TRANSIT KEY\s+VERSION\s+SIZE$/);
    for (const [i, key] of keys.entries())
      expect(list.stdout).toMatch(new RegExp(`${key}\\s+\\S+Z\\s+${transitKey}\\s+v${i + 1}\\s+\\d`));
    expect(list.stdout).toMatch(/warning: .* is incomplete/);
    expect(list.stdout).toContain(`lowest key version still needed: ${transitKey} v1`);

    const json = await kdc('backups', 'list', cluster, '--json');
    expect(json.code, json.stderr).toBe(0);
    const doc = JSON.parse(json.stdout) as {
      backups: { key: string; transitKeyVersion: number }[];
      incomplete: string[];
      lowestKeyVersion: Record<string, number>;
    };
    expect(doc.backups.map((b) => [b.key, b.transitKeyVersion])).toEqual(keys.map((k, i) => [k, i + 1]));
    expect(doc.incomplete).toHaveLength(1);
    expect(doc.lowestKeyVersion).toEqual({ [transitKey]: 1 });
    expect(json.stdout).not.toContain('vault:v');
  });

  it('names an unknown cluster and a broken credentials Secret', async () => {
    const unknown = await kdc('backups', 'list', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`KdcCluster "nope" not found in namespace "${namespace}"`);

    const broken = unique('c');
    await kube.create(at(RESOURCES.secret, namespace), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'half' },
      stringData: { [BACKUP_CREDENTIAL_KEYS.accessKeyId]: 'x' },
    });
    await kube.create(clusterRef(namespace), {
      apiVersion: KDC_API_VERSION,
      kind: KDC_CLUSTER.kind,
      metadata: { name: broken, labels: { [ISOLATED_LABEL]: 'true' } },
      spec: { version: 'v1.35.0', backup: { destinationPath: `s3://${p.s3.bucket}/`, s3CredentialSecret: 'half' } },
    });
    const missing = await kdc('backups', 'list', broken);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Secret ${namespace}/half has no key ${BACKUP_CREDENTIAL_KEYS.secretAccessKey}`);
    await kube.delete(clusterRef(namespace, broken));
  });

  it('min-decryption refuses --to 3 while backups at v1 and v2 exist, and when etcd cannot be read', async () => {
    const refused = await kdc('keys', 'min-decryption', kmsKey, '--to', '3', '--etcd-endpoint', p.etcd.endpoint);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toContain(
      `still need ${transitKey} v1 (1 backup), v2 (1 backup): run "kubectl kdc backups rewrap ${cluster} -n ${namespace}"`,
    );
    // Nothing under the cluster's prefix yet: that etcd cannot be the cluster's DataStore.
    expect(refused.stderr).toContain(`no rows at all under ${prefix}`);

    const blind = await kdc('keys', 'min-decryption', kmsKey, '--to', '2');
    expect(blind.code).toBe(1);
    expect(blind.stderr).toContain('pass --etcd-endpoint');

    const beyond = await kdc('keys', 'min-decryption', kmsKey, '--to', '4');
    expect(beyond.code).toBe(1);
    expect(beyond.stderr).toContain('latest version is 3');

    const nothing = await kdc('keys', 'min-decryption', kmsKey, '--to', '1');
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toContain('nothing to do');

    const unknown = await kdc('keys', 'min-decryption', 'no-such-key', '--to', '2');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('KMSKey "no-such-key" not found');
    expect((await root.readKey(transitKey))!.minDecryptionVersion).toBe(1);
  });

  it('rewrap: dry run first, then every backup at v3', async () => {
    const dry = await kdc('backups', 'rewrap', cluster, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout.match(/^would rewrap /gm)).toHaveLength(2);
    expect(dry.stdout).toContain('2 would be rewrapped, 1 current, 0 failed');

    const rewrap = await kdc('backups', 'rewrap', cluster);
    expect(rewrap.code, rewrap.stderr).toBe(0);
    expect(rewrap.stdout).toContain(`${keys[0]}  v1 -> v3`);
    expect(rewrap.stdout).toContain(`${keys[1]}  v2 -> v3`);
    expect(rewrap.stdout).toContain(
      `3 backups of transit key ${transitKey} (latest v3): 2 rewrapped, 1 current, 0 failed`,
    );
    expect(rewrap.stdout + rewrap.stderr).not.toMatch(/vault:v\d:/);

    const store = backupStore(p);
    expect((await listBackups(store, cluster)).backups.map((b) => b.transitKeyVersion)).toEqual([3, 3, 3]);
    store.destroy();
  });

  it('min-decryption refuses while an etcd row still uses v2, accepts once it is gone, and --confirm moves the key', async () => {
    const row = `${prefix}secrets/default/old-secret`;
    await putRaw(
      p.etcd.endpoint,
      row,
      Buffer.concat([Buffer.from(KMS_STORED_PREFIX), encryptedObject(`kdc1.v2.${'Q'.repeat(32)}`)]),
    );
    await putRaw(
      p.etcd.endpoint,
      `${prefix}secrets/default/new-secret`,
      Buffer.concat([Buffer.from(KMS_STORED_PREFIX), encryptedObject(`kdc1.v3.${'R'.repeat(32)}`)]),
    );
    await putRaw(p.etcd.endpoint, `${prefix}configmaps/default/plain`, Buffer.from('k8s\u0000\n\u0009plaintext'));
    const flags = ['--to', '3', '--etcd-endpoint', p.etcd.endpoint];

    const refused = await kdc('keys', 'min-decryption', kmsKey, ...flags);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toContain(
      `etcd rows of cluster ${cluster} under ${prefix} still use v2 (1 row): run "kubectl kdc rewrap-etcd ${cluster} -n ${namespace}"`,
    );
    expect(refused.stdout).toMatch(new RegExp(`${cluster}\\s+${prefix}\\s+3\\s+v2:1 v3:1\\s+1\\s+0\\s+0`));

    await deleteRaw(p.etcd.endpoint, row);
    const dry = await kdc('keys', 'min-decryption', kmsKey, ...flags);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`would set min_decryption_version of ${transitKey} to 3`);
    expect(dry.stdout).toContain('re-run with --confirm');
    expect((await root.readKey(transitKey))!.minDecryptionVersion).toBe(1);

    const confirmed = await kdc('keys', 'min-decryption', kmsKey, ...flags, '--confirm');
    expect(confirmed.code, confirmed.stdout + confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toContain(`min_decryption_version of ${transitKey} set to 3`);
    expect((await root.readKey(transitKey))!.minDecryptionVersion).toBe(3);
    expect(confirmed.stdout + confirmed.stderr).not.toContain(p.openbao.rootToken);

    const again = await kdc('keys', 'min-decryption', kmsKey, ...flags);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to do');
  });

  it('restore: validates the key, refuses while a restore runs, sets restore-from', async () => {
    const latest = await kdc('backups', 'restore', cluster, 'latest');
    expect(latest.code, latest.stderr).toBe(0);
    expect((await annotations())[ANNOTATIONS.restoreFrom]).toBe(keys[2]);

    const pending = await kdc('backups', 'restore', cluster, keys[0]!);
    expect(pending.code).toBe(1);
    expect(pending.stderr).toContain('has not started');

    await setState('RestoringSnapshot');
    const running = await kdc('backups', 'restore', cluster, keys[0]!);
    expect(running.code).toBe(1);
    expect(running.stderr).toContain('already running');

    await setState('Succeeded');
    const bad = await kdc('backups', 'restore', cluster, 'not-a-key');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is not a backup key');
    const other = await kdc('backups', 'restore', cluster, 'other/other-20260101T000000Z/');
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(`belongs to cluster other, not ${cluster}`);
    const absent = await kdc('backups', 'restore', cluster, `${cluster}/${cluster}-20200101T000000Z/`);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toContain('does not exist');

    // Without the trailing slash, as people type it; the finished run's state is dropped.
    const first = await kdc('backups', 'restore', cluster, keys[0]!.slice(0, -1));
    expect(first.code, first.stderr).toBe(0);
    const after = await annotations();
    expect(after[ANNOTATIONS.restoreFrom]).toBe(keys[0]);
    expect(after[ANNOTATIONS.restoreState]).toBeUndefined();
  });

  it('restore --wait follows restore-state to Succeeded, and to Failed with the RestoreReady message', async () => {
    await setState('Succeeded');
    const ok = startKdc(['backups', 'restore', cluster, keys[1]!, '--wait', '--timeout', '2m', '-n', namespace], env);
    const waitFor = async (check: () => Promise<boolean>) => {
      for (let i = 0; i < 120 && !(await check()); i++) await new Promise((r) => setTimeout(r, 250));
    };
    await waitFor(
      async () =>
        (await annotations())[ANNOTATIONS.restoreFrom] === keys[1] &&
        (await annotations())[ANNOTATIONS.restoreState] === undefined,
    );
    for (const state of ['Validating', 'RestoringSnapshot', 'Succeeded']) {
      await setState(state);
      await waitFor(async () => ok.stdout.includes(`restore-state: ${state}`));
    }
    const okResult = await ok.done;
    expect(okResult.code, okResult.stderr).toBe(0);
    expect(okResult.stdout).toMatch(
      /restore-state: Validating[\s\S]*restore-state: RestoringSnapshot[\s\S]*restore-state: Succeeded/,
    );
    expect(okResult.stdout).toContain('restore succeeded');

    const failing = startKdc(['backups', 'restore', cluster, keys[2]!, '--wait', '-n', namespace], env);
    await waitFor(
      async () =>
        (await annotations())[ANNOTATIONS.restoreFrom] === keys[2] &&
        (await annotations())[ANNOTATIONS.restoreState] === undefined,
    );
    await kube.patch(
      { ...clusterRef(namespace, cluster), subresource: 'status' },
      {
        status: {
          conditions: [
            {
              type: 'RestoreReady',
              status: 'False',
              reason: 'SnapshotCorrupt',
              message: 'segment 3 was altered',
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
            },
          ],
        },
      },
      'merge',
    );
    await setState('Failed');
    const failed = await failing.done;
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('restore failed: SnapshotCorrupt: segment 3 was altered');
  });
});
