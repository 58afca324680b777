import { readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  KMS_STORED_PREFIX,
  OPENBAO_AUDIENCE,
  OPENBAO_K8S_AUTH_MOUNT,
  clusterNames,
  openBaoAccessNames,
  at,
  RESOURCES,
} from '@kdc/shared';
import { auditLinesSince, auditMark, forEachAuditLineSince } from '../src/audit-log.ts';
import { readRaw } from '../src/etcd-raw.ts';
import { parseStoredValue } from '../src/kms.ts';
import { platform, openBaoAnonymous, management, serviceAccountToken } from './helpers.ts';
import { etcdKey, useKmsTenant } from './kms-fixture.ts';

const secretValue = (i: number) => `kms-e2e-plaintext-${i}-${randomBytes(6).toString('hex')}`;

describe('KMS v2 plugin behind a real tenant kube-apiserver', () => {
  const kms = useKmsTenant('kms');
  const written = new Map<string, string>();

  it('stores every Secret as k8s:enc:kms:v2:kube-dc-kms-plugin:<EncryptedObject> keyed by the published key_id, and reads it back byte-equal', async () => {
    for (let i = 0; i < 20; i++) {
      const name = `s-${i}`;
      const value = secretValue(i);
      written.set(name, value);
      await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name },
        stringData: { value },
      });
    }
    const status = await kms.client.status();
    expect(status).toMatchObject({ version: 'v2', healthz: 'ok' });
    expect(status.key_id.length).toBeGreaterThan(0);
    expect(Buffer.byteLength(status.key_id)).toBeLessThanOrEqual(1024);
    for (const [name, value] of written) {
      const raw = (await readRaw(platform().etcd.endpoint, etcdKey(kms.t, 'secrets', 'default', name)))!;
      expect(raw.toString('latin1').startsWith(KMS_STORED_PREFIX)).toBe(true);
      expect(raw.includes(Buffer.from(value))).toBe(false);
      const envelope = parseStoredValue(raw);
      expect(envelope.prefix).toBe(KMS_STORED_PREFIX);
      expect(envelope.keyID).toBe(status.key_id);
      expect(envelope.encryptedDEKSource.toString('latin1')).toMatch(/^vault:v1:/);
      expect(envelope.encryptedDEKSource.length).toBeLessThanOrEqual(1024);
      expect(envelope.encryptedDEKSourceType).toBe(1); // HKDF_SHA256_XNONCE_AES_GCM_SEED
      const read = await kms.t.tenant.get<{ data: Record<string, string> } & Record<string, unknown>>(
        at(RESOURCES.secret, 'default', name),
      );
      expect(Buffer.from(read.data.value!, 'base64').toString()).toBe(value);
    }
  });

  it('answers Status from memory: a burst of Status calls makes no OpenBao request', async () => {
    const mark = auditMark(platform().openbao.auditLog);
    const started = Date.now();
    // (Status latency is measured by npm run bench:kms, not asserted here.)
    for (let i = 0; i < 500; i++) await kms.client.status();
    const elapsedS = (Date.now() - started) / 1000;
    const keyReads = auditLinesSince(platform().openbao.auditLog, mark).filter((l) =>
      l.includes(`"transit/keys/${kms.t.transitKey}"`),
    ).length;
    // Background reads happen every 2 s (request + response lines); 500 Status calls add none.
    expect(keyReads).toBeLessThanOrEqual(2 * (Math.ceil(elapsedS / 2) + 1));
  });

  it('refuses 5,000 random and malformed requests with the right codes, without crashing or growing', async () => {
    const rss = async () =>
      Number(
        /process_resident_memory_bytes (\d+(\.\d+)?(e\+\d+)?)/.exec(
          await (await fetch(`${kms.t.plugin.metricsUrl}/metrics`)).text(),
        )![1],
      );
    const { key_id } = await kms.client.status();
    const good = await kms.client.encrypt(randomBytes(32));
    let rssAfterWarmUp = 0;
    const codes = new Map<number, number>();
    const cases: (() => Promise<unknown>)[] = [
      () => kms.client.decrypt({ ciphertext: randomBytes(1 + Math.floor(Math.random() * 200)), key_id }),
      () => kms.client.decrypt({ ciphertext: good.ciphertext, key_id: `foreign-${randomBytes(4).toString('hex')}` }),
      () => kms.client.decrypt({ ciphertext: Buffer.alloc(2000, 65), key_id }),
      () => kms.client.decrypt({ ciphertext: good.ciphertext, key_id: 'x'.repeat(1500) }),
      () =>
        kms.client.decrypt({ ciphertext: good.ciphertext, key_id, annotations: { Not_A_Domain: Buffer.from('x') } }),
      () => kms.client.decrypt({ ciphertext: Buffer.from(`vault:v1:${randomBytes(60).toString('base64')}`), key_id }),
      () => kms.client.decrypt({ ciphertext: Buffer.from(`vault:v7:${randomBytes(60).toString('base64')}`), key_id }),
      () => kms.client.decrypt({ ciphertext: Buffer.alloc(0), key_id }),
      () => kms.client.encrypt(Buffer.alloc(0)),
      () => kms.client.encrypt(randomBytes(4096)),
    ];
    const expected = [GrpcStatus.INVALID_ARGUMENT];
    for (let i = 0; i < 5000; i += 50) {
      // The first 1,000 warm up V8 and the HTTP agent; growth is measured over the other 4,000.
      if (i === 1000) rssAfterWarmUp = await rss();
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          cases[(i + j) % cases.length]!().then(
            () => codes.set(-1, (codes.get(-1) ?? 0) + 1),
            (e: { code: number }) => codes.set(e.code, (codes.get(e.code) ?? 0) + 1),
          ),
        ),
      );
    }
    expect(codes.get(-1)).toBeUndefined();
    expect([...codes.keys()].every((c) => expected.includes(c))).toBe(true);
    expect([...codes.values()].reduce((a, b) => a + b, 0)).toBe(5000);
    // Still serving, still healthy.
    expect((await kms.client.status()).healthz).toBe('ok');
    expect((await kms.client.decrypt({ ciphertext: good.ciphertext, key_id })).plaintext).toHaveLength(32);
    const growthMb = ((await rss()) - rssAfterWarmUp) / 2 ** 20;
    console.log(`kms-plugin RSS growth over 4,000 bad requests after warm-up: ${growthMb.toFixed(1)} MiB`);
    expect(growthMb).toBeLessThan(32);
    expect(kms.t.plugin.process.running).toBe(true);
  });

  it("with the plugin's own token, OpenBao refuses rotate and every other key", async () => {
    const names = clusterNames(kms.t.cluster);
    const jwt = await serviceAccountToken(management(), kms.t.namespace, names.kmsPluginServiceAccount, [
      OPENBAO_AUDIENCE,
    ]);
    const login = await openBaoAnonymous().loginKubernetes(
      OPENBAO_K8S_AUTH_MOUNT,
      openBaoAccessNames(kms.t.namespace, kms.t.cluster).pluginRole,
      jwt,
    );
    const plugin = openBaoAnonymous().withToken(login.clientToken);
    await expect(plugin.transit().rotate(kms.t.transitKey)).rejects.toMatchObject({ status: 403 });
    await expect(plugin.transit().configure(kms.t.transitKey, { min_decryption_version: 1 })).rejects.toMatchObject({
      status: 403,
    });
    await expect(plugin.transit().createKey(`${kms.t.transitKey}-x`)).rejects.toMatchObject({ status: 403 });
    await expect(plugin.transit().encrypt(`${kms.t.transitKey}-other`, Buffer.from('x'))).rejects.toMatchObject({
      status: 403,
    });
    await expect(plugin.transit().datakey(kms.t.transitKey, 'plaintext')).rejects.toMatchObject({ status: 403 });
    expect((await plugin.transit().readKey(kms.t.transitKey))?.latestVersion).toBeGreaterThanOrEqual(1);
    await plugin.revokeSelf();
  });

  it('keeps its socket private and its logs free of tokens and plaintext', async () => {
    expect(statSync(kms.t.plugin.socket).mode & 0o777).toBe(0o600);
    const log = readFileSync(kms.t.plugin.process.logFile, 'utf8');
    expect(log).toContain('"msg":"OpenBao login ok"');
    expect(log).toContain('"msg":"kms-plugin listening"');
    const token = readFileSync(kms.t.tokenFile, 'utf8').trim();
    const secrets = [token, ...[...written.values()].flatMap((v) => [v, Buffer.from(v).toString('base64')])];
    const leaks = (text: string) => secrets.filter((secret) => text.includes(secret)).length;
    expect(leaks(log)).toBe(0);
    // The audit log of the whole run, line by line (it is far too large for one string).
    let auditLeaks = 0;
    forEachAuditLineSince(platform().openbao.auditLog, 0, (line) => (auditLeaks += leaks(line)));
    expect(auditLeaks).toBe(0);
    expect(log).not.toMatch(/hvs\.|s\.[A-Za-z0-9]{24}/);
    expect(log).not.toMatch(/vault:v\d+:/);
  });
});
