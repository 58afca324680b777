import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeClient, at, RESOURCES } from '@kdc/shared';
import { readRaw } from '../src/etcd-raw.ts';
import { kmsClient, parseStoredValue, startKmsPlugin, type KmsClient } from '../src/kms.ts';
import { startKubeApiserver, type KubeApiserver } from '../src/kube-apiserver.ts';
import { waitFor } from '../src/wait.ts';
import { platform } from './helpers.ts';
import { etcdKey, kmsTenant, type KmsTenant } from './kms-fixture.ts';

// Issue 12, operation 5: the platform reaches the same OpenBao by another hostname. Rows written
// by the release before kdc2 carry kdc1 key_ids, which hash the URL; kdc2 ids do not. A real
// tenant kube-apiserver keeps reading every row through the plugin upgrade and the hostname
// change, and a cold apiserver (no DEK cache, so every old row goes through Decrypt with its
// stored key_id) reads them back byte for byte after each step.

type Secret = { data: Record<string, string> } & Record<string, unknown>;
const ROWS = 20;

describe('the OpenBao URL changes and the key_id form moves to kdc2: no row is lost', () => {
  let t: KmsTenant;
  const cold: KubeApiserver[] = [];
  const clients: KmsClient[] = [];
  const ledger = new Map<string, string>();
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const a of cold) await a.stop();
    await t?.stop();
  });

  const secretRef = (name?: string) => at(RESOURCES.secret, 'default', name);
  const storedKeyId = async (name: string) =>
    parseStoredValue((await readRaw(platform().etcd.endpoint, etcdKey(t, 'secrets', 'default', name)))!).keyID;
  const status = async () => {
    const client = kmsClient(t.plugin.socket);
    clients.push(client);
    return waitFor('the plugin to answer Status', async () => (await client.status()).key_id, { timeoutMs: 20_000 });
  };
  /** A new apiserver replica of the tenant: same etcd prefix, same plugin socket, an empty DEK cache. */
  const coldReplica = async (label: string) => {
    const p = platform();
    const apiserver = await startKubeApiserver({
      binary: p.binaries['kube-apiserver'],
      dir: t.dir,
      logDir: p.logDir,
      etcdEndpoint: p.etcd.endpoint,
      etcdPrefix: `/${t.cluster}`,
      name: `${t.cluster}-${label}`,
      extraArgs: [`--encryption-provider-config=${join(t.dir, 'encryption-config.yaml')}`],
    });
    cold.push(apiserver);
    return KubeClient.fromFile(apiserver.kubeconfig);
  };
  const readsBack = async (kube: KubeClient) => {
    for (const [name, value] of ledger) {
      const secret = await kube.get<Secret>(secretRef(name));
      expect(secret.data.v, name).toBe(value);
    }
  };

  it('rows under kdc1 read back after the upgrade to kdc2 and after the move to a second hostname, with zero read errors', async () => {
    const url = new URL(platform().openbao.url);
    const first = `https://127.0.0.1:${url.port}`;
    const second = `https://localhost:${url.port}`;
    expect(platform().openbao.url).toBe(first);

    // The release before kdc2: kdc1 key_ids under the first URL.
    t = await kmsTenant({ prefix: 'url', pluginArgs: ['--key-id-form=kdc1'] });
    const kdc1 = await status();
    expect(kdc1).toMatch(/^kdc1\.v1\./);
    for (let i = 0; i < ROWS; i++) {
      const name = `old-${i}`;
      const value = randomBytes(24 + i);
      await t.tenant.create(secretRef(), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        data: { v: value.toString('base64') },
      });
      ledger.set(name, value.toString('base64'));
    }
    for (const name of ledger.keys()) expect(await storedKeyId(name)).toBe(kdc1);
    const sample = parseStoredValue(
      (await readRaw(platform().etcd.endpoint, etcdKey(t, 'secrets', 'default', 'old-0')))!,
    );

    // A reader on the running apiserver for the whole change.
    const reader = { reads: 0, errors: [] as string[], stop: false };
    const loop = (async () => {
      while (!reader.stop) {
        for (const [name, value] of ledger) {
          try {
            const secret = await t.tenant.get<Secret>(secretRef(name));
            if (secret.data.v !== value) reader.errors.push(`${name}: value changed`);
            reader.reads++;
          } catch (error) {
            reader.errors.push(`${name}: ${(error as Error).message.slice(0, 200)}`);
          }
        }
      }
    })();

    // Upgrade: the plugin now publishes kdc2; kdc1 rows under --openbao-addr still decrypt.
    await t.restartPlugin(['--key-id-form=kdc2']);
    const kdc2 = await status();
    expect(kdc2).toMatch(/^kdc2\.v1\./);
    await readsBack(await coldReplica('after-upgrade'));
    // The running apiserver adopts the new key_id on its own Status poll: a new DEK seed.
    let n = 0;
    await waitFor(
      'a new write through the running apiserver to carry the kdc2 key_id',
      async () => {
        const name = `new-${n++}`;
        const value = randomBytes(16).toString('base64');
        await t.tenant.create(secretRef(), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name },
          data: { v: value },
        });
        ledger.set(name, value);
        return (await storedKeyId(name)) === kdc2;
      },
      { timeoutMs: 150_000, intervalMs: 5_000 },
    );
    expect(await storedKeyId('old-0')).toBe(kdc1);

    // The platform reaches the same OpenBao by its second name; k8-manager passes the first as legacy.
    await t.restartPlugin(['--key-id-form=kdc2', `--openbao-addr=${second}`, `--legacy-key-id-openbao-addr=${first}`]);
    expect(await status()).toBe(kdc2);
    const afterMove = await coldReplica('after-move');
    await readsBack(afterMove);
    await afterMove.create(secretRef(), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'after-move' },
      data: { v: 'bW92ZWQ=' },
    });
    ledger.set('after-move', 'bW92ZWQ=');
    expect(await storedKeyId('after-move')).toBe(kdc2);

    reader.stop = true;
    await loop;
    expect(reader.errors).toEqual([]);
    expect(reader.reads).toBeGreaterThan(ROWS * 3);
    await readsBack(t.tenant);

    // Control: a plugin given only the second URL cannot know the kdc1 rows (what an upgrade
    // without the legacy address would do to every encrypted tenant), and says so before OpenBao.
    const p = platform();
    const bare = await startKmsPlugin({
      dir: t.dir,
      logDir: p.logDir,
      name: `${t.cluster}-no-legacy`,
      args: [...t.pluginArgs, '--key-id-form=kdc2', `--openbao-addr=${second}`],
    });
    const bareClient = kmsClient(bare.socket);
    clients.push(bareClient);
    try {
      await expect(bareClient.decrypt({ ciphertext: sample.encryptedDEKSource, key_id: sample.keyID })).rejects.toThrow(
        /key_id: is not a key_id this plugin produced/,
      );
      const withLegacy = kmsClient(t.plugin.socket);
      clients.push(withLegacy);
      expect(
        (await withLegacy.decrypt({ ciphertext: sample.encryptedDEKSource, key_id: sample.keyID })).plaintext.length,
      ).toBeGreaterThan(0);
    } finally {
      await bare.stop();
    }
  }, 360_000);
});
