// One way to read a program's settings: flag, else the first environment variable set, else the
// default (node:util.parseArgs does the parsing). FlagReader collects every error, each naming the
// flag and what to do, so a user fixes all of them in one go.
import { parseArgs } from 'node:util';
import type { z } from 'zod';

export interface FlagSpec {
  type: 'string' | 'boolean';
  help: string;
  env?: readonly string[];
  default?: string;
  multiple?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
type Raw = Record<string, string | boolean | string[] | undefined>;

export type ReadFlagsResult<F extends FlagSpecs> =
  { ok: true; flags: FlagReader<F>; positionals: string[] } | { ok: false; errors: string[] };

/** Parses `argv` against `specs`; an unknown flag is an error that points at --help. */
export function readFlags<F extends FlagSpecs>(
  specs: F,
  argv: readonly string[],
  env: Record<string, string | undefined>,
  options: { allowPositionals?: boolean; context?: string } = {},
): ReadFlagsResult<F> {
  let values: Raw;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(specs).map(([name, f]) => [name, { type: f.type, ...(f.multiple ? { multiple: true } : {}) }]),
      ),
      strict: true,
      allowPositionals: options.allowPositionals ?? false,
    });
    values = parsed.values as Raw;
    positionals = parsed.positionals;
  } catch (error) {
    const message = (error as Error).message;
    const unknown = /Unknown option '(.+?)'/.exec(message);
    const context = options.context ? ` for "${options.context}"` : '';
    return {
      ok: false,
      errors: [
        unknown
          ? `unknown flag ${unknown[1]}${context}: run with --help for the list of flags`
          : message.split('\n')[0]!,
      ],
    };
  }
  for (const [name, f] of Object.entries(specs)) {
    if (values[name] !== undefined) continue;
    const variable = (f.env ?? []).find((v) => env[v]);
    if (variable) values[name] = env[variable];
    else if (f.default !== undefined) values[name] = f.default;
  }
  return { ok: true, flags: new FlagReader(specs, values), positionals };
}

export class FlagReader<F extends FlagSpecs> {
  readonly errors: string[] = [];
  private readonly specs: F;
  private readonly values: Raw;

  constructor(specs: F, values: Raw) {
    this.specs = specs;
    this.values = values;
  }

  /** The trimmed value; an empty one counts as unset. */
  get(flag: keyof F & string): string | undefined {
    const value = this.values[flag];
    return typeof value === 'string' ? value.trim() || undefined : undefined;
  }

  bool(flag: keyof F & string): boolean {
    return this.values[flag] === true;
  }

  all(flag: keyof F & string): string[] {
    const value = this.values[flag];
    return Array.isArray(value) ? value.map((v) => v.trim()) : [];
  }

  fail(message: string): void {
    this.errors.push(message);
  }

  required(flag: keyof F & string, why = ''): string {
    const value = this.get(flag);
    if (!value) {
      const env = this.specs[flag]!.env;
      this.fail(`--${flag}: required${why}${env?.length ? ` (or set ${env.join(' or ')})` : ''}`);
    }
    return value ?? '';
  }

  /** The value checked (and transformed) by `schema`; its issue message follows `--flag: `. */
  check<T>(flag: keyof F & string, schema: z.ZodType<T, string>): T | undefined {
    const value = this.get(flag);
    if (value === undefined) return undefined;
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    this.fail(`--${flag}: ${result.error.issues[0]?.message ?? `"${value}" is not valid`}`);
    return undefined;
  }
}

/** `--name   help [default X; env A|B]` lines for a help text. */
export function flagHelpLines(
  specs: FlagSpecs,
  extra: (name: string, spec: FlagSpec) => string[] = () => [],
): string[] {
  return Object.entries(specs).map(([name, f]) => {
    const notes = [
      f.default !== undefined ? `default ${f.default}` : '',
      f.env?.length ? `env ${f.env.join('|')}` : '',
      ...extra(name, f),
    ].filter(Boolean);
    return `  --${name.padEnd(28)} ${f.help}${notes.length ? ` [${notes.join('; ')}]` : ''}`;
  });
}
