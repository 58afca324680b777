import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// A process that starts a Manager and nothing else: what a controller's main.ts does first.
const MANAGER = new URL('./manager.ts', import.meta.url).href;
const SCRIPT = `
import { Manager } from ${JSON.stringify(MANAGER)};
const mgr = new Manager({ name: 'manager-test', defaultMetricsAddr: '127.0.0.1:0' });
await mgr.start();
console.log('started');
process.exit(0);
`;

const dir = mkdtempSync(join(tmpdir(), 'manager-test-'));
const kubeconfig = join(dir, 'kubeconfig');
// Never contacted: every case ends before the manager reads from the API server.
writeFileSync(
  kubeconfig,
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
    users: [{ name: 'u', user: { token: 'not-used' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  }),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error lines' messages (the log is JSON lines). */
const errors = (output: string) =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((entry) => entry.level >= 50)
    .map((entry) => entry.msg);

function run(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=source', '--input-type=module', '-e', SCRIPT], {
      env: { PATH: process.env.PATH ?? '', KUBECONFIG: kubeconfig, LOG_LEVEL: 'info', ...env },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('Manager: METRICS_ADDR', { timeout: 60_000 }, () => {
  it.each([
    ['no port', 'localhost'],
    ['a port out of range', '0.0.0.0:70000'],
    ['a name for a port', '0.0.0.0:metrics'],
  ])('exits 2 naming the variable and the fix on %s', async (_, value) => {
    const { code, output } = await run({ METRICS_ADDR: value });
    expect(code).toBe(2);
    expect(errors(output)).toEqual([`METRICS_ADDR "${value}" is not host:port: set host:port, e.g. 0.0.0.0:8080`]);
    expect(output).not.toContain('started');
  });

  it('exits 2 naming the address when the port is taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const { code, output } = await run({ METRICS_ADDR: `127.0.0.1:${port}` });
      expect(code).toBe(2);
      expect(errors(output)).toEqual([
        expect.stringMatching(
          new RegExp(`^cannot serve metrics and probes on 127\\.0\\.0\\.1:${port} \\(METRICS_ADDR\\): .*EADDRINUSE`),
        ),
      ]);
    } finally {
      taken.close();
    }
  });
});
