import { describe, expect, it } from 'vitest';
import { at, RESOURCES } from '@kdc/shared';
import { readRaw } from '../src/etcd-raw.ts';
import { parseStoredValue } from '../src/kms.ts';
import { waitFor } from '../src/wait.ts';
import { platform } from './helpers.ts';
import { etcdKey, useKmsTenant } from './kms-fixture.ts';

describe('KEK rotation seen by a real kube-apiserver', () => {
  const kms = useKmsTenant('rot');

  const storedKeyId = async (name: string) =>
    parseStoredValue((await readRaw(platform().etcd.endpoint, etcdKey(kms.t, 'secrets', 'default', name)))!).keyID;

  it('publishes a new key_id after a Transit rotation; new writes use it within the apiserver poll; old rows still read', async () => {
    await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'before' },
      stringData: { v: 'written-under-v1' },
    });
    const first = (await kms.client.status()).key_id;
    expect(await storedKeyId('before')).toBe(first);

    await kms.t.root.transit().rotate(kms.t.transitKey);
    const second = await waitFor(
      'the plugin to publish the new key_id',
      async () => {
        const { key_id } = await kms.client.status();
        return key_id !== first ? key_id : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(second).toMatch(/^kdc2\.v2\./);

    // kube-apiserver polls Status once a minute while healthy; do not shorten it, wait for it.
    const started = Date.now();
    let n = 0;
    await waitFor(
      'a new write to carry the new key_id',
      async () => {
        const name = `after-${n++}`;
        await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name },
          stringData: { v: name },
        });
        return (await storedKeyId(name)) === second;
      },
      { timeoutMs: 150_000, intervalMs: 5_000 },
    );
    console.log(`apiserver adopted the rotated key_id after ${Math.round((Date.now() - started) / 1000)} s`);

    // The key_id never flips back.
    for (let i = 0; i < 50; i++) expect((await kms.client.status()).key_id).toBe(second);
    // Rows written before still decrypt (v1 stays decryptable) and keep their old key_id.
    expect(await storedKeyId('before')).toBe(first);
    const before = await kms.t.tenant.get<{ data: Record<string, string> } & Record<string, unknown>>(
      at(RESOURCES.secret, 'default', 'before'),
    );
    expect(Buffer.from(before.data.v!, 'base64').toString()).toBe('written-under-v1');
  });
});
