import { chmod, cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { contextDigest } from './context.ts';

describe('contextDigest', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const context = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctx-'));
    dirs.push(dir);
    await mkdir(join(dir, 'app/proto'), { recursive: true });
    await writeFile(join(dir, 'app/main.js'), 'console.log(1)');
    await writeFile(join(dir, 'app/proto/a.proto'), 'syntax = "proto3";');
    await symlink('main.js', join(dir, 'app/link.js'));
    return dir;
  };

  it('is the same for an identical copy and with the same extras', async () => {
    const a = await context();
    const b = await mkdtemp(join(tmpdir(), 'ctx-'));
    dirs.push(b);
    await cp(a, b, { recursive: true, verbatimSymlinks: true });
    expect(await contextDigest(b, ['x'])).toBe(await contextDigest(a, ['x']));
  });

  it.each([
    ['content', (d: string) => writeFile(join(d, 'app/main.js'), 'console.log(2)')],
    ['mode', (d: string) => chmod(join(d, 'app/main.js'), 0o755)],
    [
      'link target',
      async (d: string) => {
        await rm(join(d, 'app/link.js'));
        await symlink('proto/a.proto', join(d, 'app/link.js'));
      },
    ],
    ['a new file', (d: string) => writeFile(join(d, 'app/extra'), '')],
    [
      'a renamed folder',
      async (d: string) => {
        await cp(join(d, 'app/proto'), join(d, 'app/protos'), { recursive: true });
        await rm(join(d, 'app/proto'), { recursive: true });
      },
    ],
  ])('changes with the %s', async (_what, change) => {
    const dir = await context();
    const before = await contextDigest(dir);
    await change(dir);
    expect(await contextDigest(dir)).not.toBe(before);
  });

  it('changes with the extras (the base digest, a build argument)', async () => {
    const dir = await context();
    expect(await contextDigest(dir, ['base sha256:1'])).not.toBe(await contextDigest(dir, ['base sha256:2']));
  });
});
