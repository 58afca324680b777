import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSocketDirArgs, prepareSocketDir } from './socket-dir.ts';

describe('kms-plugin prepare-socket-dir', () => {
  it('parses the directory and the owner', () => {
    expect(parseSocketDirArgs(['--dir=/var/run/kmsplugin', '--owner=65532:65533'])).toEqual({
      ok: true,
      dir: '/var/run/kmsplugin',
      uid: 65532,
      gid: 65533,
    });
  });

  it.each([
    [['--owner=1:1'], '--dir must be an absolute path'],
    [['--dir=run/kms', '--owner=1:1'], '--dir must be an absolute path'],
    [['--dir=/', '--owner=1:1'], '--dir must be an absolute path'],
    [['--dir=/d'], '--owner "" must be <uid>:<gid>'],
    [['--dir=/d', '--owner=nonroot'], '--owner "nonroot" must be <uid>:<gid>'],
    [['--dir=/d', '--owner=1:1', '--mode=777'], "Unknown option '--mode'"],
  ])('refuses %j naming the problem', (argv, message) => {
    const result = parseSocketDirArgs(argv);
    expect(result.ok ? '' : result.error).toContain(message);
  });

  it('hands the directory to the owner, and refuses a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdc-sock-'));
    expect(prepareSocketDir(dir, 65532, 65531)).toBe(`${dir} is owned by 65532:65531`);
    expect(statSync(dir)).toMatchObject({ uid: 65532, gid: 65531 });
    const file = join(dir, 'f');
    writeFileSync(file, '');
    expect(() => prepareSocketDir(file, 1, 1)).toThrow(/is not a directory/);
  });
});
