import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPolicy, transitKeyName } from '@kdc/shared';
import { kmsPluginPolicyRules } from '@kdc/encryption-reconciler';
import { PLUGIN_MAIN } from '../src/images.ts';
import { kmsClient, startKmsPlugin } from '../src/kms.ts';
import { openBaoRoot, platform, unique } from './helpers.ts';
import { nodeProgram } from '../src/programs.ts';

describe('kms-plugin as a process: auth methods, socket hygiene, shutdown', () => {
  const ns = unique('proc');
  const kmskey = 'etcd';
  const key = transitKeyName(ns, kmskey);
  const policy = unique('kms-proc');
  const dir = join(platform().dir, ns);
  const caFile = join(dir, 'ca.pem');
  const base = () => [
    `--openbao-addr=${platform().openbao.url}`,
    `--openbao-ca-file=${caFile}`,
    `--transit-key=${key}`,
    '--health-interval=1s',
    '--health-stale-after=5s',
  ];

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(caFile, platform().openbao.caPem);
    const root = openBaoRoot();
    await root.transit().createKey(key);
    await root.writePolicy(policy, renderPolicy(kmsPluginPolicyRules(key)));
  });
  afterAll(async () => {
    await openBaoRoot().deletePolicy(policy);
  });

  async function roundTrip(name: string, args: string[]) {
    const plugin = await startKmsPlugin({ dir, logDir: platform().logDir, name, args: [...base(), ...args] });
    const client = kmsClient(plugin.socket);
    try {
      const status = await client.status();
      expect(status.healthz).toBe('ok');
      const { ciphertext, key_id } = await client.encrypt(Buffer.alloc(32, 7));
      expect(key_id).toBe(status.key_id);
      expect((await client.decrypt({ ciphertext, key_id })).plaintext).toEqual(Buffer.alloc(32, 7));
      expect(readFileSync(plugin.process.logFile, 'utf8')).toContain('"msg":"OpenBao login ok"');
    } finally {
      client.close();
      await plugin.stop();
    }
  }

  it('authenticates with a token file', async () => {
    const token = await openBaoRoot().createToken({ policies: [policy], ttl: '1h', no_default_policy: true });
    const file = join(dir, 'token');
    writeFileSync(file, token.clientToken, { mode: 0o600 });
    await roundTrip(`${ns}-token`, ['--auth-method=token', `--token-file=${file}`]);
  });

  it('authenticates with AppRole', async () => {
    const root = openBaoRoot();
    const mount = unique('approle');
    await root.enableAuth(mount, 'approle');
    await root.writeAuthRole(mount, 'kms', { token_policies: [policy], token_ttl: '1h' });
    const { data: rid } = await root.request<{ data: { role_id: string } }>('GET', `auth/${mount}/role/kms/role-id`);
    const { data: sid } = await root.request<{ data: { secret_id: string } }>(
      'POST',
      `auth/${mount}/role/kms/secret-id`,
      {},
    );
    const file = join(dir, 'secret-id');
    writeFileSync(file, sid.secret_id, { mode: 0o600 });
    await roundTrip(`${ns}-approle`, [
      '--auth-method=approle',
      `--auth-mount=${mount}`,
      `--approle-role-id=${rid.role_id}`,
      `--approle-secret-id-file=${file}`,
    ]);
  });

  it('authenticates with userpass', async () => {
    const root = openBaoRoot();
    const mount = unique('userpass');
    await root.enableAuth(mount, 'userpass');
    await root.request('POST', `auth/${mount}/users/kms`, {
      password: 'correct-horse-battery',
      token_policies: [policy],
    });
    const file = join(dir, 'password');
    writeFileSync(file, 'correct-horse-battery', { mode: 0o600 });
    await roundTrip(`${ns}-userpass`, [
      '--auth-method=userpass',
      `--auth-mount=${mount}`,
      '--userpass-username=kms',
      `--userpass-password-file=${file}`,
    ]);
  });

  it('removes a stale socket, refuses one another process listens on, and exits 0 on SIGTERM with the socket gone', async () => {
    const token = await openBaoRoot().createToken({ policies: [policy], ttl: '1h', no_default_policy: true });
    const file = join(dir, 'token-2');
    writeFileSync(file, token.clientToken, { mode: 0o600 });
    const name = `${ns}-sock`;
    const socket = join(dir, `${name}.sock`);
    const args = [...base(), '--auth-method=token', `--token-file=${file}`];

    // Another process answers on the socket: the plugin must refuse to start.
    const squatter = createServer(() => undefined);
    await new Promise<void>((r) => squatter.listen(socket, r));
    const refused = await promisify(execFile)(process.execPath, [
      ...nodeProgram(PLUGIN_MAIN),
      `--socket=${socket}`,
      '--metrics-addr=127.0.0.1:0',
      ...args,
    ]).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect((refused as { code: number }).code).toBe(1);
    expect((refused as { stdout: string }).stdout).toContain('another process is listening');
    // A crashed listener leaves its socket file behind: that one is stale and gets replaced.
    await new Promise<void>((r) => squatter.close(() => r()));
    const crashed = spawn(
      process.execPath,
      ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => crashed.stdout.once('data', r));
    crashed.kill('SIGKILL');
    await new Promise((r) => crashed.once('exit', r));
    expect(existsSync(socket)).toBe(true);

    const plugin = await startKmsPlugin({ dir, logDir: platform().logDir, name, args });
    expect(readFileSync(plugin.process.logFile, 'utf8')).toContain('removed a stale socket');
    const client = kmsClient(plugin.socket);
    await client.status(); // connected, as the apiserver is
    // Calls already sent when SIGTERM arrives are drained, not dropped.
    const inFlight = Array.from({ length: 20 }, (_, i) => client.encrypt(Buffer.alloc(32, i)));
    await new Promise((r) => setTimeout(r, 2));
    await plugin.stop();
    const results = await Promise.allSettled(inFlight);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(20);
    client.close();
    expect(existsSync(socket)).toBe(false);
    expect(plugin.process.code).toBe(0);
    expect(readFileSync(plugin.process.logFile, 'utf8')).toContain('kms-plugin stopped');
  });
});
