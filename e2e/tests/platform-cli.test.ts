import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { KubeClient, RESOURCES } from '@kdc/shared';
import { pidAlive } from '../src/process.ts';
import type { PlatformState } from '../src/platform.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const run = promisify(execFile);

describe('npm run platform -- up|status|down', () => {
  const home = mkdtempSync(join(tmpdir(), 'kdc-cli-test-'));
  const env = { ...process.env, KDC_PLATFORM_POINTER: join(home, 'pointer.json') };
  const cli = (command: string) =>
    run(process.execPath, ['--conditions=source', CLI, command], { env, timeout: 180_000 });
  afterAll(async () => {
    await cli('down').catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  it('starts servers that outlive the CLI, reports them, and stops exactly those pids', async () => {
    const up = await cli('up');
    expect(up.stdout).toMatch(/platform up in/);
    const { dir } = JSON.parse(readFileSync(env.KDC_PLATFORM_POINTER, 'utf8')) as { dir: string };
    const state = JSON.parse(readFileSync(join(dir, 'platform.json'), 'utf8')) as PlatformState;
    const pids = [state.etcd.pid, state.management.pid, state.openbao.pid, state.s3.pid];
    expect(pids.every(pidAlive)).toBe(true);

    // The CLI process has exited; the platform it started still serves.
    const namespaces = await KubeClient.fromFile(state.management.kubeconfig).list(RESOURCES.namespace);
    expect(namespaces.items.map((n) => n.metadata?.name)).toContain('kube-system');

    const status = await cli('status');
    expect(status.stdout).toMatch(/kube-apiserver\s+pid \d+\s+running/);
    await expect(cli('up')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/already running/) });

    const down = await cli('down');
    expect(down.stdout).toMatch(/removed/);
    expect(pids.some(pidAlive)).toBe(false);
    expect(existsSync(join(dir, 'logs', 'management.log'))).toBe(true);
    expect(existsSync(join(dir, 'openbao'))).toBe(false);
    await expect(cli('status')).rejects.toMatchObject({ code: 3 });
  });
});
