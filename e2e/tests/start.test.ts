import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { shippedImages } from '../src/images.ts';
import { pidAlive } from '../src/process.ts';

const START = fileURLToPath(new URL('../demo/start.ts', import.meta.url));

// The README's first command, as a newcomer runs it: its own platform, the chart installed by
// helm with the controllers from the images, an encrypted cluster and the proof. --check tears it
// down and prints what it read from the live objects and raw etcd.
describe('npm start -- --check', () => {
  it('reaches an encrypted, Ready cluster whose controllers helm installed from the shipped images, shows the proof, and leaves nothing running', async () => {
    const built = (await shippedImages()).built;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--conditions=source', START, '--check'], {
      timeout: 600_000,
      maxBuffer: 1 << 24,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(result).toMatchObject({
      ready: true,
      controllersFrom: 'helm',
      etcdPrefix: 'k8s:enc:kms:v2:kube-dc-kms-plugin:',
      encryptedRows: 3,
      totalRows: 3,
    });
    expect(result.images).toEqual(
      Object.fromEntries(Object.entries(built).map(([name, image]) => [name, image.digest])),
    );
    expect(stderr).toMatch(/CLUSTER\s+KEY\s+KEK\s+PLUGIN-READY/);
    // Torn down: the platform's servers are gone (their pids are in the platform line it logged).
    const platformLine = /platform up: (.*)$/m.exec(stderr)?.[1] ?? '';
    const pids = [...platformLine.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
  }, 660_000);
});
