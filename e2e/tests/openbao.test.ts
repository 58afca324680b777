import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  OPENBAO_AUDIENCE,
  OPENBAO_K8S_AUTH_MOUNT,
  OpenBaoError,
  renderPolicy,
  ciphertextVersion,
  at,
  RESOURCES,
} from '@kdc/shared';
import { createNamespace, management, openBaoAnonymous, openBaoRoot, serviceAccountToken, unique } from './helpers.ts';
import { platform } from './helpers.ts';
import { waitFor } from '../src/wait.ts';
import { auditLinesSince, auditMark } from '../src/audit-log.ts';

describe('OpenBao Transit through the typed client', () => {
  it('creates a key, encrypts, decrypts, rotates, rewraps and issues data keys', async () => {
    const transit = openBaoRoot().transit();
    const name = unique('it-key');
    await transit.createKey(name, { type: 'aes256-gcm96' });
    const key = await transit.readKey(name);
    expect(key).toMatchObject({
      name,
      type: 'aes256-gcm96',
      latestVersion: 1,
      exportable: false,
      deletionAllowed: false,
    });
    expect(key!.versions[1]).toBeGreaterThan(1_700_000_000);

    const plaintext = randomBytes(32);
    const v1 = await transit.encrypt(name, plaintext);
    expect(v1.keyVersion).toBe(1);
    expect(ciphertextVersion(v1.ciphertext)).toBe(1);
    expect(await transit.decrypt(name, v1.ciphertext)).toEqual(plaintext);

    const rotated = await transit.rotate(name);
    expect(rotated.latestVersion).toBe(2);
    const rewrapped = await transit.rewrap(name, v1.ciphertext);
    expect(rewrapped.keyVersion).toBe(2);
    expect(await transit.decrypt(name, rewrapped.ciphertext)).toEqual(plaintext);
    // Pinning an older version still encrypts with it (what the KMS plugin relies on).
    expect((await transit.encrypt(name, plaintext, { keyVersion: 1 })).keyVersion).toBe(1);

    const dk = await transit.datakey(name, 'plaintext');
    expect(dk.plaintext).toHaveLength(32);
    expect(await transit.decrypt(name, dk.ciphertext)).toEqual(dk.plaintext);

    const batch = await transit.rewrapBatch(name, [v1.ciphertext, 'vault:v1:not-base64!']);
    expect(batch[0]).toMatchObject({ ok: true });
    expect(batch[1]).toMatchObject({ ok: false });
    const decrypted = await transit.decryptBatch(name, [v1.ciphertext, 'garbage']);
    expect(decrypted[0]).toEqual({ ok: true, value: plaintext });
    expect(decrypted[1]!.ok).toBe(false);

    await transit.configure(name, { min_decryption_version: 2 });
    await expect(transit.decrypt(name, v1.ciphertext)).rejects.toMatchObject({ status: 400 });
    expect((await transit.readKey(name))!.minDecryptionVersion).toBe(2);
  });

  it('answers a missing key with null and typed errors otherwise', async () => {
    const transit = openBaoRoot().transit();
    expect(await transit.readKey(unique('missing'))).toBeNull();
    const error = await transit.rotate(unique('missing')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenBaoError);
    expect((error as OpenBaoError).status).toBeGreaterThanOrEqual(400);
  });
});

describe('Kubernetes auth at k8s-host with a real TokenReview', () => {
  it('logs in with a projected-style token (audience openbao), enforces the policy, refuses a wrong audience', async () => {
    const kube = management();
    const root = openBaoRoot();
    const ns = await createNamespace(kube, 'auth');
    const keyName = unique('auth-key');
    await root.transit().createKey(keyName);
    const policy = unique('tcp-it');
    await root.writePolicy(
      policy,
      renderPolicy([
        { path: `transit/encrypt/${keyName}`, capabilities: ['update'] },
        { path: `transit/decrypt/${keyName}`, capabilities: ['update'] },
        { path: `transit/keys/${keyName}`, capabilities: ['read'] },
        { path: 'auth/token/lookup-self', capabilities: ['read'] },
      ]),
    );
    expect(await root.readPolicy(policy)).toContain(`transit/encrypt/${keyName}`);
    // The role may be written before the ServiceAccount exists (SPEC 3.3).
    await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, policy, {
      bound_service_account_names: ['plugin'],
      bound_service_account_namespaces: [ns],
      audience: OPENBAO_AUDIENCE,
      token_policies: [policy],
      token_ttl: '10m',
    });
    expect(await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, policy)).toMatchObject({ token_policies: [policy] });
    await kube.create(at(RESOURCES.serviceAccount, ns), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'plugin' },
    });

    const jwt = await serviceAccountToken(kube, ns, 'plugin', [OPENBAO_AUDIENCE]);
    const login = await openBaoAnonymous().loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, policy, jwt);
    expect(login.policies).toContain(policy);
    expect(login.metadata).toMatchObject({ service_account_name: 'plugin', service_account_namespace: ns });
    const plugin = openBaoAnonymous().withToken(login.clientToken);
    const self = await plugin.lookupSelf();
    expect(self.ttlSeconds).toBeGreaterThan(0);
    expect(self.ttlSeconds).toBeLessThanOrEqual(600);

    const ct = await plugin.transit().encrypt(keyName, Buffer.from('probe'));
    expect((await plugin.transit().decrypt(keyName, ct.ciphertext)).toString()).toBe('probe');
    await expect(plugin.transit().rotate(keyName)).rejects.toMatchObject({ status: 403 });
    await expect(plugin.transit().encrypt(`${keyName}-other`, Buffer.from('x'))).rejects.toMatchObject({ status: 403 });

    const wrongAudience = await serviceAccountToken(kube, ns, 'plugin', ['not-openbao']);
    await expect(
      openBaoAnonymous().loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, policy, wrongAudience),
    ).rejects.toMatchObject({ status: 403 });
    const otherSa = 'intruder';
    await kube.create(at(RESOURCES.serviceAccount, ns), {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: otherSa },
    });
    const intruder = await serviceAccountToken(kube, ns, otherSa, [OPENBAO_AUDIENCE]);
    await expect(openBaoAnonymous().loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, policy, intruder)).rejects.toMatchObject({
      status: 403,
    });

    // The TokenReview is real: a token of a deleted ServiceAccount no longer logs in.
    // (The apiserver checks the ServiceAccount through its informer cache: allow it to catch up.)
    await kube.delete(at(RESOURCES.serviceAccount, ns, 'plugin'));
    await waitFor(
      "a deleted ServiceAccount's token to be refused",
      async () => {
        const outcome = await openBaoAnonymous()
          .loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, policy, jwt)
          .then(
            () => 'accepted',
            (e: OpenBaoError) => e.status,
          );
        return outcome === 403;
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );

    await root.deleteAuthRole(OPENBAO_K8S_AUTH_MOUNT, policy);
    await root.deletePolicy(policy);
    expect(await root.readAuthRole(OPENBAO_K8S_AUTH_MOUNT, policy)).toBeNull();
    expect(await root.readPolicy(policy)).toBeNull();
  });

  it('writes an audit log that records requests without their plaintext', async () => {
    const transit = openBaoRoot().transit();
    const name = unique('audit-key');
    const mark = auditMark(platform().openbao.auditLog);
    await transit.createKey(name);
    const marker = `audit-marker-${randomBytes(8).toString('hex')}`;
    await transit.encrypt(name, Buffer.from(marker));
    const audit = auditLinesSince(platform().openbao.auditLog, mark).join('\n');
    expect(audit).toContain(`transit/encrypt/${name}`);
    expect(audit).not.toContain(Buffer.from(marker).toString('base64'));
    expect(audit).not.toContain(platform().openbao.rootToken);
  });
});
