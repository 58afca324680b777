import { describe, expect, it } from 'vitest';
import { durationMs, EnvSettings, hostPort, httpUrl, integer } from './checks.ts';
import { readFlags, type FlagSpecs } from './flags.ts';

const SPECS = {
  addr: { type: 'string', help: 'URL', env: ['ADDR', 'OLD_ADDR'] },
  mode: { type: 'string', help: 'mode', default: 'fast' },
  dry: { type: 'boolean', help: 'dry run' },
  extra: { type: 'string', help: 'repeatable', multiple: true },
} as const satisfies FlagSpecs;

describe('readFlags: flag, else the first environment variable set, else the default', () => {
  it.each([
    [['--addr=https://a'], { OLD_ADDR: 'https://b' }, 'https://a'],
    [[], { ADDR: '', OLD_ADDR: 'https://b' }, 'https://b'],
    [[], { ADDR: 'https://c', OLD_ADDR: 'https://b' }, 'https://c'],
    [[], {}, undefined],
  ])('%j with %j -> %s', (argv, env, addr) => {
    const read = readFlags(SPECS, argv, env);
    expect(read.ok && read.flags.get('addr')).toBe(addr ?? undefined);
    expect(read.ok && read.flags.get('mode')).toBe('fast');
  });
  it('reads booleans and repeatable flags', () => {
    const read = readFlags(SPECS, ['--dry', '--extra', ' a ', '--extra=b'], {});
    expect(read.ok && [read.flags.bool('dry'), read.flags.all('extra')]).toEqual([true, ['a', 'b']]);
  });
  it('an unknown flag names itself, the command, and --help', () => {
    expect(readFlags(SPECS, ['--adr=x'], {}, { context: 'backup' })).toEqual({
      ok: false,
      errors: ['unknown flag --adr for "backup": run with --help for the list of flags'],
    });
  });
  it('collects every error: required (naming its variables) and checked values', () => {
    const read = readFlags(SPECS, ['--mode=  '], {});
    if (!read.ok) throw new Error('parse failed');
    read.flags.required('addr', ' (the URL)');
    read.flags.required('mode');
    expect(read.flags.errors).toEqual(['--addr: required (the URL) (or set ADDR or OLD_ADDR)', '--mode: required']);
  });
  it('check() prefixes the schema message with the flag and keeps the transformed value', () => {
    const read = readFlags(SPECS, ['--addr=ftp://x'], {});
    if (!read.ok) throw new Error('parse failed');
    expect(read.flags.check('addr', httpUrl)).toBeUndefined();
    expect(read.flags.errors).toEqual(['--addr: "ftp://x" is not an http(s) URL']);
  });
});

describe('shared checks', () => {
  it.each([
    ['https://bao:8200/', true, 'https://bao:8200'],
    ['http://10.0.0.1', true, 'http://10.0.0.1'],
    ['bao:8200', false, '"bao:8200" is not an http(s) URL'],
  ])('httpUrl %s', (input, ok, out) => {
    const r = httpUrl.safeParse(input);
    expect(r.success ? r.data : r.error.issues[0]!.message).toBe(out);
    expect(r.success).toBe(ok);
  });
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['[::]:9', { host: '::', port: 9 }],
    ['host:70000', '"host:70000" is not host:port'],
    ['nohost', '"nohost" is not host:port'],
  ])('hostPort %s', (input, out) => {
    const r = hostPort.safeParse(input);
    expect(r.success ? r.data : r.error.issues[0]!.message).toEqual(out);
  });
  it.each([
    [durationMs(), '10s', 10_000],
    [durationMs(), '0s', 'must be greater than zero'],
    [durationMs(3600, '1h (e.g. 24h)'), '30m', '"30m" must be a duration of at least 1h (e.g. 24h)'],
    [durationMs(3600), '2h', 7_200_000],
  ])('durationMs %#', (schema, input, out) => {
    const r = schema.safeParse(input);
    expect(r.success ? r.data : r.error.issues[0]!.message).toEqual(out);
  });
  it('durationMs passes the duration grammar error through', () => {
    const r = durationMs().safeParse('ten');
    expect(r.success).toBe(false);
  });
  it.each([
    ['16', 16],
    ['0', '"0" must be an integer in 1..16'],
    ['1.5', '"1.5" must be an integer in 1..16'],
    ['17', '"17" must be an integer in 1..16'],
  ])('integer(1, 16) %s', (input, out) => {
    const r = integer(1, 16).safeParse(input);
    expect(r.success ? r.data : r.error.issues[0]!.message).toEqual(out);
  });
});

describe('EnvSettings: a controller reads its environment, every refusal names the variable', () => {
  const env = new EnvSettings({ RESYNC_PERIOD: '5m', WORKERS: 'many', EMPTY: ' ', LIST: 'a, b,,c' });
  it('reads with fallbacks', () => {
    expect(env.durationMs('RESYNC_PERIOD', '10m')).toBe(300_000);
    expect(env.durationMs('OBSERVE_PERIOD', '30s')).toBe(30_000);
    expect(env.optional('EMPTY')).toBeUndefined();
    expect(env.list('LIST', '')).toEqual(['a', 'b', 'c']);
    expect(env.positiveInt('MISSING', 4)).toBe(4);
  });
  it('throws what to fix', () => {
    expect(() => env.positiveInt('WORKERS', 4)).toThrow('WORKERS: "many" is not a whole number above 0');
    expect(() => env.required('OPENBAO_URL', 'point it at OpenBao')).toThrow(
      'OPENBAO_URL is not set: point it at OpenBao',
    );
  });
  it('reads a label selector at start-up, naming the variable when it is not one', () => {
    const selectors = new EnvSettings({ GOOD: ' shard in (a,b) ', BAD: 'shard=a,,tier' });
    expect(selectors.labelSelector('GOOD')?.keys).toEqual(['shard']);
    expect(selectors.labelSelector('GOOD')?.text).toBe('shard in (a,b)');
    expect(selectors.labelSelector('UNSET')).toBeUndefined();
    expect(() => selectors.labelSelector('BAD')).toThrow('BAD: label selector "shard=a,,tier": an empty requirement');
  });
});
