import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCliExecutable, type CliExecutable } from '@kdc/images';
import { KDC_API_VERSION, RESOURCES } from '@kdc/shared';
import { startStallProxy } from '../src/stall-proxy.ts';
import { createNamespace, management, platform } from './helpers.ts';

type Ran = { code: number; stdout: string; stderr: string };

// `kubectl kdc` as a user installs it: one executable on PATH, found and run by the real kubectl,
// on a machine whose PATH has no Node at all (the system Node 20 is what broke it before).
describe('kubectl-kdc, the single executable', () => {
  let cli: CliExecutable;
  let bin: string;
  let run: (args: string[], env?: Record<string, string>) => Promise<Ran>;

  beforeAll(async () => {
    cli = await buildCliExecutable({ log: (line) => process.stderr.write(`[cli] ${line}\n`) });
    bin = mkdtempSync(join(tmpdir(), 'kdc-path-'));
    writeFileSync(join(bin, 'kubectl-kdc'), readFileSync(cli.path), { mode: 0o755 });
    const home = join(bin, 'home');
    mkdirSync(home);
    const kubectl = platform().binaries.kubectl;
    // kubectl's own dir is not on PATH: only the plugin dir and the system tools (no node in either).
    run = (args, env = {}) =>
      promisify(execFile)(kubectl, args, {
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: home, KUBECONFIG: platform().management.kubeconfig, ...env },
        timeout: 60_000,
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
  }, 600_000);

  it('runs without Node: PATH holds the plugin alone, and it names its release', async () => {
    // Positive control: the system's /usr/bin has a node (Node 20 here), the plugin dir has none.
    expect((await run(['kdc', 'version'])).code).toBe(0);
    const version = await run(['kdc', 'version'], { PATH: bin });
    expect(version).toMatchObject({ code: 0, stdout: `kubectl-kdc ${cli.version}\n` });
    expect(
      await promisify(execFile)('/bin/sh', ['-c', 'command -v node || echo none'], { env: { PATH: bin } }),
    ).toMatchObject({ stdout: 'none\n' });
  });

  it("kubectl runs it as a plugin with kubectl's flags: fleet -n -o json|yaml|name, exit 1 on an unhealthy cluster", async () => {
    const kube = management();
    const ns = await createNamespace(kube, 'cli-fleet');
    await kube.create(
      { ...RESOURCES.kdcCluster, namespace: ns },
      {
        apiVersion: KDC_API_VERSION,
        kind: 'KdcCluster',
        metadata: { name: 'web', labels: { 'kdc-e2e/k8m': 'none' } },
        spec: { version: 'v1.35.0', encryption: { etcd: { enabled: true } } },
      },
    );
    const json = await run(['kdc', 'fleet', '-n', ns, '-o', 'json', '--request-timeout', '20s']);
    // Nothing reconciles it here: encryption asked for, the plugin not ready yet, so fleet exits 1.
    expect(json.code, json.stderr).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: 'Fleet',
      clusters: [{ namespace: ns, name: 'web', pluginReady: false }],
    });
    const yaml = await run(['kdc', 'fleet', '-n', ns, '-o', 'yaml']);
    expect(parse(yaml.stdout)).toMatchObject({ kind: 'Fleet', clusters: [{ name: 'web' }] });
    expect((await run(['kdc', 'fleet', '-n', ns, '-o', 'name'])).stdout).toBe(`kdccluster/${ns}/web\n`);
    expect(await run(['kdc', 'fleet', '-o', 'jsonpath'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('use one of json, yaml, wide, name'),
    });
    const status = await run(['kdc', 'status', 'web', '-n', ns, '-o', 'json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ name: 'web', namespace: ns });
  });

  it('--request-timeout ends a request to an apiserver that stopped answering', async () => {
    const api = new URL(platform().management.url);
    const proxy = await startStallProxy({ host: api.hostname, port: Number(api.port) });
    try {
      proxy.stall();
      const kubeconfig = join(bin, 'stalled.kubeconfig');
      writeFileSync(
        kubeconfig,
        readFileSync(platform().management.kubeconfig, 'utf8').replace(api.host, proxy.address),
      );
      const started = Date.now();
      const result = await run(['kdc', 'fleet', '--request-timeout', '2s', '--kubeconfig', kubeconfig]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/cannot reach the Kubernetes API/);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await proxy.close();
    }
  });

  it('kubectl completes "kubectl kdc" through kubectl_complete-kdc', async () => {
    const script = await run(['kdc', 'completion', 'plugin']);
    writeFileSync(join(bin, 'kubectl_complete-kdc'), script.stdout, { mode: 0o755 });
    expect((await run(['__complete', 'kdc', 'st'])).stdout).toBe('status\n:4\n');
    expect((await run(['__complete', 'kdc', 'fleet', '-o', ''])).stdout).toBe('json\nyaml\nwide\nname\n:4\n');
  });

  it('ships as an archive (fixed owners and times) with a krew manifest naming its sha256', async () => {
    const manifest = parse(readFileSync(cli.manifest, 'utf8')) as {
      kind: string;
      metadata: { name: string };
      spec: { version: string; platforms: { uri: string; sha256: string; bin: string }[] };
    };
    expect(manifest).toMatchObject({ kind: 'Plugin', metadata: { name: 'kdc' }, spec: { version: `v${cli.version}` } });
    const [linux] = manifest.spec.platforms;
    expect(linux!.sha256).toBe(createHash('sha256').update(readFileSync(cli.archive)).digest('hex'));
    expect(linux!.uri.endsWith(`/v${cli.version}/kubectl-kdc-linux-amd64.tar.gz`)).toBe(true);
    const listing = await promisify(execFile)('tar', ['tzvf', cli.archive]);
    expect(listing.stdout).toMatch(/-rwxr-xr-x 0\/0 .* 1970-01-01 00:00 kubectl-kdc\n/);
    expect(dirname(cli.archive)).toBe(dirname(cli.path));
  });
});
