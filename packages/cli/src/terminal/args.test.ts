import { describe, expect, it } from 'vitest';
import { flagOrEnv, parseArgs, parsePositiveInt, type CommandSpec } from './args.ts';

const spec: CommandSpec = {
  name: 'keys min-decryption',
  positionals: ['kmskey'],
  summary: 'test',
  flags: {
    namespace: { type: 'string', short: 'n', help: '' },
    to: { type: 'string', help: '' },
    confirm: { type: 'boolean', help: '' },
  },
};

describe('parseArgs', () => {
  const ok = (positionals: Record<string, string>, flags: Record<string, string | boolean> = {}) => ({
    ok: true,
    args: { positionals, flags, help: false },
  });
  it.each([
    [['k'], ok({ kmskey: 'k' })],
    [['k', '--to', '3'], ok({ kmskey: 'k' }, { to: '3' })],
    [['--to=3', 'k'], ok({ kmskey: 'k' }, { to: '3' })],
    [['k', '-n', 'ns'], ok({ kmskey: 'k' }, { namespace: 'ns' })],
    [['k', '-nns'], ok({ kmskey: 'k' }, { namespace: 'ns' })],
    [['k', '-n=ns'], ok({ kmskey: 'k' }, { namespace: 'ns' })],
    [['k', '--confirm'], ok({ kmskey: 'k' }, { confirm: true })],
    [['k', '--confirm=false'], ok({ kmskey: 'k' }, { confirm: false })],
    [['k', '--no-confirm'], ok({ kmskey: 'k' }, { confirm: false })],
    [['--', '-k'], ok({ kmskey: '-k' })],
  ] as const)('%j', (argv, expected) => {
    expect(parseArgs(argv, spec)).toEqual(expected);
  });

  it.each([
    [[], /missing <kmskey>/],
    [['a', 'b'], /unexpected argument "b"/],
    [['k', '--bogus'], /unknown flag "--bogus": valid flags are -n\/--namespace, --to, --confirm/],
    [['k', '-x'], /unknown flag "-x"/],
    [['k', '--to'], /flag --to needs a value/],
    [['k', '--to', '--confirm'], /flag --to needs a value/],
    [['k', '--to='], /non-empty value/],
    [['k', '--to', '1', '--to', '2'], /more than once/],
    [['k', '--confirm=yes'], /is a switch/],
  ] as const)('refuses %j', (argv, message) => {
    const result = parseArgs(argv, spec);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toMatch(message);
      expect(result.error).toContain('kubectl kdc keys min-decryption <kmskey>');
    }
  });

  it('--help wins over missing positionals', () => {
    expect(parseArgs(['--help'], spec)).toMatchObject({ ok: true, args: { help: true } });
    expect(parseArgs(['-h'], spec)).toMatchObject({ ok: true, args: { help: true } });
  });
});

describe('parsePositiveInt', () => {
  it.each([
    ['1', 1],
    ['3', 3],
    ['2147483647', 2147483647],
    ['0', null],
    ['-1', null],
    ['1.5', null],
    ['3a', null],
    ['', null],
    [' 3', null],
    ['99999999999', null],
  ])('%j -> %j', (text, expected) => expect(parsePositiveInt(text)).toBe(expected));
});

describe('flagOrEnv', () => {
  it('prefers the flag, then the first non-empty variable', () => {
    expect(flagOrEnv({ a: 'flag' }, 'a', { X: 'x' }, ['X'])).toBe('flag');
    expect(flagOrEnv({}, 'a', { X: '', Y: 'y' }, ['X', 'Y'])).toBe('y');
    expect(flagOrEnv({}, 'a', {}, ['X'])).toBeUndefined();
  });
});
