import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withBuildLock } from './lock.ts';

describe('the image build lock', () => {
  it('runs builds one at a time: the second starts after the first ends, and says it waited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdc-lock-'));
    const events: string[] = [];
    const logs: string[] = [];
    const build = (name: string) =>
      withBuildLock(
        dir,
        (l) => logs.push(l),
        async () => {
          events.push(`${name} start`);
          await new Promise((r) => setTimeout(r, 300));
          events.push(`${name} end`);
        },
      );
    await Promise.all([build('a'), new Promise((r) => setTimeout(r, 50)).then(() => build('b'))]);
    expect(events).toEqual(['a start', 'a end', 'b start', 'b end']);
    expect(logs.some((l) => l.includes(`waiting for another image build (pid ${process.pid})`))).toBe(true);
  });

  it('takes over a lock left by a process that is gone, and releases it after a failed build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdc-lock-'));
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    }).stdout;
    mkdirSync(join(dir, 'build.lock'));
    writeFileSync(join(dir, 'build.lock', 'pid'), gone);
    const logs: string[] = [];
    await expect(
      withBuildLock(
        dir,
        (l) => logs.push(l),
        async () => Promise.reject(new Error('build failed')),
      ),
    ).rejects.toThrow('build failed');
    expect(logs).toEqual([`taking over the build lock of a process that is gone (${gone})`]);
    await expect(
      withBuildLock(
        dir,
        () => undefined,
        async () => 'next',
      ),
    ).resolves.toBe('next');
  });
});
