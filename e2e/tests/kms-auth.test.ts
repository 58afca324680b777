import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPENBAO_K8S_AUTH_MOUNT, openBaoAccessNames, at, RESOURCES } from '@kdc/shared';
import { kmsClient, startKmsPlugin } from '../src/kms.ts';
import { sleep } from '../src/wait.ts';
import { openBaoRoot, platform } from './helpers.ts';
import { useKmsTenant } from './kms-fixture.ts';

const logins = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"OpenBao login ok"')).length;

describe('plugin authentication through Kubernetes auth', () => {
  const kms = useKmsTenant('auth');

  it('logs in again by itself when its token is revoked mid-run, and keeps serving', async () => {
    await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'a' },
      stringData: { v: 'a' },
    });
    const loginsBefore = logins(kms.t.plugin.process.logFile);
    const root = openBaoRoot();
    // Find the plugin's token by its role and revoke it, as an operator (or an incident) would.
    const { data } = await root.request<{ data: { keys: string[] } }>('LIST', 'auth/token/accessors');
    let revoked = 0;
    for (const accessor of data.keys) {
      // Other tests revoke their tokens concurrently: an accessor may be gone by the time we look.
      const info = await root
        .request<{ data: { meta?: Record<string, string> | null; path?: string } }>(
          'POST',
          'auth/token/lookup-accessor',
          { accessor },
        )
        .catch(() => null);
      if (!info) continue;
      if (info.data.meta?.role === kms.t.role && info.data.path?.startsWith(`auth/${OPENBAO_K8S_AUTH_MOUNT}/login`)) {
        await root.request('POST', 'auth/token/revoke-accessor', { accessor });
        revoked++;
      }
    }
    expect(revoked).toBeGreaterThanOrEqual(1);
    // The next calls hit 403, the plugin logs in again and retries: nothing fails.
    for (let i = 0; i < 5; i++) {
      const { ciphertext, key_id } = await kms.client.encrypt(Buffer.alloc(32, i));
      expect((await kms.client.decrypt({ ciphertext, key_id })).plaintext).toEqual(Buffer.alloc(32, i));
    }
    await kms.t.tenant.create(at(RESOURCES.secret, 'default'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'b' },
      stringData: { v: 'b' },
    });
    expect(logins(kms.t.plugin.process.logFile)).toBeGreaterThan(loginsBefore);
    expect((await kms.client.status()).healthz).toBe('ok');
  });

  it('with a role it is not bound to: logs the exact 403 line, reports unhealthy, backs off, does not crash', async () => {
    const other = openBaoAccessNames(kms.t.namespace, 'someone-else').pluginRole;
    const root = openBaoRoot();
    // A role that exists but is bound to another ServiceAccount: OpenBao answers 403.
    await root.writeAuthRole(OPENBAO_K8S_AUTH_MOUNT, `${other}-${kms.t.cluster}`, {
      bound_service_account_names: ['someone-else-kms-plugin'],
      bound_service_account_namespaces: [kms.t.namespace],
      audience: 'openbao',
      token_policies: ['default'],
    });
    const role = `${other}-${kms.t.cluster}`;
    const wrong = await startKmsPlugin({
      dir: kms.t.dir,
      logDir: platform().logDir,
      name: `${kms.t.cluster}-wrong-role`,
      waitHealthy: false,
      args: kms.t.pluginArgs.map((a) => (a.startsWith('--auth-role=') ? `--auth-role=${role}` : a)),
    });
    try {
      const wrongClient = kmsClient(wrong.socket);
      await sleep(20_000);
      const log = readFileSync(wrong.process.logFile, 'utf8');
      const refusals = log
        .split('\n')
        .filter((l) => l.includes(`OpenBao login (mount=${OPENBAO_K8S_AUTH_MOUNT} role=${role}): 403`)).length;
      expect(refusals).toBeGreaterThanOrEqual(2);
      // Backoff 1, 2, 4, 8 s...: about five attempts in 20 s, not one per health check or request.
      expect(refusals).toBeLessThanOrEqual(7);
      await expect(wrongClient.status()).rejects.toMatchObject({
        code: 14,
        details: expect.stringMatching(/auth_failed/),
      });
      expect((await fetch(`${wrong.metricsUrl}/readyz`)).status).toBe(503);
      expect(wrong.process.running).toBe(true);
      wrongClient.close();
    } finally {
      await wrong.stop();
    }
  });
});
