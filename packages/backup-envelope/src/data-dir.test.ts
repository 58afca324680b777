import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDataDirArgs, runDataDirStep } from './data-dir.ts';

describe('kdc-backup data-dir', () => {
  it.each([
    [
      ['prepare', '--restoring=/var/lib/etcd/data.restoring'],
      { step: 'prepare', restoring: '/var/lib/etcd/data.restoring' },
    ],
    [
      ['swap', '--restoring=/d/r', '--data-dir=/d/data', '--previous=/d/prev'],
      { step: 'swap', restoring: '/d/r', dataDir: '/d/data', previous: '/d/prev' },
    ],
  ])('parses %j', (argv, step) => {
    expect(parseDataDirArgs(argv)).toEqual({ ok: true, step });
  });

  it.each([
    [[], 'missing step: use prepare or swap'],
    [['rm'], 'unknown step "rm"'],
    [['prepare'], '--restoring is required'],
    [['prepare', '--restoring=relative/dir'], 'must be an absolute path below /'],
    [['prepare', '--restoring=/'], 'must be an absolute path below /'],
    [['prepare', '--restoring=/a', '--previous=/b'], '--previous is not a flag of prepare'],
    [['swap', '--restoring=/a', '--data-dir=/a', '--previous=/b'], 'must be three different directories'],
    [['swap', '--restoring=/a', '--bogus=/b'], 'Unknown option'],
  ])('refuses %j naming the problem', (argv, message) => {
    const result = parseDataDirArgs(argv);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.error).toContain(message);
  });

  it('prepare removes a half-written restore; swap keeps the live dir as previous and moves the restored one in', () => {
    const root = mkdtempSync(join(tmpdir(), 'kdc-datadir-'));
    const [restoring, dataDir, previous] = ['data.restoring', 'data', 'data.pre-restore'].map((d) => join(root, d)) as [
      string,
      string,
      string,
    ];
    mkdirSync(restoring);
    writeFileSync(join(restoring, 'half'), 'x');
    expect(runDataDirStep({ step: 'prepare', restoring })).toContain('an earlier attempt');
    expect(existsSync(restoring)).toBe(false);
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'member'), 'live');
    mkdirSync(previous);
    writeFileSync(join(previous, 'member'), 'older');
    mkdirSync(restoring);
    writeFileSync(join(restoring, 'member'), 'restored');
    runDataDirStep({ step: 'swap', restoring, dataDir, previous });
    expect(readFileSync(join(dataDir, 'member'), 'utf8')).toBe('restored');
    expect(readFileSync(join(previous, 'member'), 'utf8')).toBe('live');
    expect(existsSync(restoring)).toBe(false);
  });

  it('swap without a restored dir fails and leaves the live data dir alone', () => {
    const root = mkdtempSync(join(tmpdir(), 'kdc-datadir-'));
    const dataDir = join(root, 'data');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'member'), 'live');
    expect(() =>
      runDataDirStep({ step: 'swap', restoring: join(root, 'r'), dataDir, previous: join(root, 'p') }),
    ).toThrow(/nothing restored at .*the live data dir .* is untouched/);
    expect(readFileSync(join(dataDir, 'member'), 'utf8')).toBe('live');
    expect(existsSync(join(root, 'p'))).toBe(false);
  });
});
