import { describe, expect, it } from 'vitest';
import { outputFormat, render } from './output.ts';

describe('-o', () => {
  const p = {
    document: { a: 1, b: ['x'] },
    names: ['kdccluster/c1', 'kdccluster/c2'],
    table: () => 'TABLE\n',
    wide: () => 'WIDE\n',
  };

  it.each([
    [{}, 'table', 'TABLE\n'],
    [{ output: 'wide' }, 'wide', 'WIDE\n'],
    [{ output: 'json' }, 'json', '{\n  "a": 1,\n  "b": [\n    "x"\n  ]\n}\n'],
    [{ output: 'yaml' }, 'yaml', 'a: 1\nb:\n  - x\n'],
    [{ output: 'name' }, 'name', 'kdccluster/c1\nkdccluster/c2\n'],
    [{ json: true }, 'json', '{\n  "a": 1,\n  "b": [\n    "x"\n  ]\n}\n'],
  ] as const)('%j prints %s', (flags, format, text) => {
    expect(outputFormat(flags)).toBe(format);
    expect(render(outputFormat(flags), p)).toBe(text);
  });

  it('wide falls back to the table where a command has no more columns', () => {
    expect(render('wide', { ...p, wide: undefined })).toBe('TABLE\n');
  });

  it.each([
    [{ output: 'jsonpath' }, '-o "jsonpath": use one of json, yaml, wide, name'],
    [{ output: 'yaml', json: true }, '--json and -o yaml disagree'],
  ])('refuses %j naming the choices', (flags, message) => {
    expect(() => outputFormat(flags)).toThrow(message);
  });
});
