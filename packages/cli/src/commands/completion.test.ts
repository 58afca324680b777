import { describe, expect, it } from 'vitest';
import { run } from '../run.ts';

const complete = async (...words: string[]) => (await run(['__complete', ...words])).stdout.split('\n').filter(Boolean);

describe('completion', () => {
  it.each([
    [[''], ['fleet', 'status', 'rewrap-etcd', 'backups', 'keys', 'completion', 'version', ':4']],
    [['st'], ['status', ':4']],
    [
      ['backups', ''],
      ['list', 'rewrap', 'restore', ':4'],
    ],
    [
      ['backups', 'list', 'prod', '--re'],
      ['--request-timeout', ':4'],
    ],
    [
      ['fleet', '-o', ''],
      ['json', 'yaml', 'wide', 'name', ':4'],
    ],
    [
      ['status', 'prod', '--output', 'y'],
      ['yaml', ':4'],
    ],
    [
      ['completion', ''],
      ['bash', 'zsh', 'plugin', ':4'],
    ],
    [['status', ''], [':4']],
    [['rotate', ''], [':4']],
  ])('after %j offers %j (cobra protocol: candidates, then the no-file directive)', async (words, expected) => {
    expect(await complete(...words)).toEqual(expected);
  });

  it('prints the scripts, and names the shells it has', async () => {
    expect((await run(['completion', 'bash'])).stdout).toContain('complete -F _kubectl_kdc kubectl-kdc');
    expect((await run(['completion', 'plugin'])).stdout).toContain('exec kubectl-kdc __complete "$@"');
    expect(await run(['completion', 'fish'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('needs a shell: bash, zsh, plugin'),
    });
  });
});
