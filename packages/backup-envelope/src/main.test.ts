import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--conditions=source', MAIN, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 55_000,
  });

// Each case starts a Node process that loads the AWS SDK: generous timeouts on a busy machine.
describe('kdc-backup process', { timeout: 60_000 }, () => {
  it('exits 2 on bad flags, naming each problem', () => {
    const result = run(['backup', '--cluster', 'Prod', '--segment-size', 'huge']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/kdc-backup: --cluster: "Prod" is not a DNS label/);
    expect(result.stderr).toMatch(/kdc-backup: --s3-bucket: required \(or set S3_BUCKET\)/);
    expect(result.stderr).toMatch(/kdc-backup: --segment-size: "huge"/);
    expect(run(['frobnicate']).status).toBe(2);
  });

  it('prints help and exits 0', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/Usage: kdc-backup <backup\|restore\|rewrap\|list>/);
  });

  it('exits 1 with a reason when S3 is unreachable, and logs JSON to stderr only', () => {
    const result = run(['list', '--cluster', 'prod', '--s3-bucket', 'b', '--s3-endpoint', 'http://127.0.0.1:9'], {
      S3_ACCESS_KEY_ID: 'a',
      S3_SECRET_ACCESS_KEY: 'b',
      AWS_MAX_ATTEMPTS: '1',
    });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/kdc-backup list: IO_FAILED: S3 ListObjectsV2 s3:\/\/b\/prod\/ failed/);
  });
});
