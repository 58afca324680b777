import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, OPENBAO_K8S_AUTH_MOUNT, at, RESOURCES } from '@kdc/shared';
import { kmsClient, type KmsClient } from '../src/kms.ts';
import { configureKubernetesAuth, startOpenBao, type OpenBaoServer } from '../src/openbao.ts';
import { createCA } from '../src/pki.ts';
import { reviewerToken } from '../src/platform.ts';
import { sleep, waitFor } from '../src/wait.ts';
import { platform, unique } from './helpers.ts';
import { kmsTenant, type KmsTenant } from './kms-fixture.ts';

describe('OpenBao outage under a serving tenant', () => {
  let bao: OpenBaoServer;
  let t: KmsTenant;
  let client: KmsClient;
  beforeAll(async () => {
    // A dedicated OpenBao with persistent storage, so stopping it disturbs no other test.
    const p = platform();
    const dir = join(p.dir, unique('outage-bao'));
    mkdirSync(dir, { recursive: true });
    const logDir = join(p.logDir, 'outage');
    mkdirSync(logDir, { recursive: true });
    bao = await startOpenBao({ binary: p.binaries.vault, dir, logDir, ca: createCA(join(dir, 'pki'), 'outage') });
    const management = KubeClient.fromFile(p.management.kubeconfig);
    await configureKubernetesAuth(bao, {
      mount: OPENBAO_K8S_AUTH_MOUNT,
      kubernetesHost: p.management.url,
      caPem: p.management.caPem,
      reviewerJwt: await reviewerToken(management),
    });
    t = await kmsTenant({ prefix: 'outage', openbao: { url: bao.url, caPem: bao.caPem, rootToken: bao.rootToken } });
    client = kmsClient(t.plugin.socket);
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
    await bao?.stop();
  });

  it('60 s without OpenBao: healthz goes not-ok, key_id stays, no crash; back to ok within 30 s after; nothing lost', async () => {
    const secrets = Array.from({ length: 10 }, (_, i) => [`pre-${i}`, `pre-outage-value-${i}`] as const);
    for (const [name, v] of secrets)
      await t.tenant.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        stringData: { v },
      });
    const before = await client.status();
    expect(before.healthz).toBe('ok');

    await bao.process.kill();
    const outageStart = Date.now();
    await waitFor('Status to report unhealthy', async () => (await client.status()).healthz !== 'ok', {
      timeoutMs: 15_000,
    });
    const during = await client.status();
    expect(during.key_id).toBe(before.key_id);
    expect(during.healthz).toBe('openbao_unavailable');

    // The tenant keeps serving reads of existing rows (the apiserver caches data keys).
    let reads = 0;
    while (Date.now() - outageStart < 60_000) {
      for (const [name, v] of secrets) {
        const s = await t.tenant.get<{ data: Record<string, string> } & Record<string, unknown>>(
          at(RESOURCES.secret, 'default', name),
        );
        expect(Buffer.from(s.data.v!, 'base64').toString()).toBe(v);
        reads++;
      }
      expect((await client.status()).key_id).toBe(before.key_id);
      await sleep(2_000);
    }
    expect(t.plugin.process.running).toBe(true);

    await bao.restart();
    const restarted = Date.now();
    await waitFor('Status to be healthy again', async () => (await client.status()).healthz === 'ok', {
      timeoutMs: 30_000,
    });
    console.log(
      `outage: ${reads} tenant reads served; healthz ok ${Math.round((Date.now() - restarted) / 1000)} s after OpenBao returned`,
    );
    expect((await client.status()).key_id).toBe(before.key_id);

    await t.tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'post' },
      stringData: { v: 'post-outage' },
    });
    for (const [name, v] of [...secrets, ['post', 'post-outage'] as const]) {
      const s = await t.tenant.get<{ data: Record<string, string> } & Record<string, unknown>>(
        at(RESOURCES.secret, 'default', name),
      );
      expect(Buffer.from(s.data.v!, 'base64').toString()).toBe(v);
    }
  });
});
