// A small, pure argv parser for the plugin's commands: `--flag value`, `--flag=value`, short
// aliases (`-n ns`), booleans, `--` to end flags, and errors that name the flag to fix.
import { parseDuration } from '@kdc/shared';
import { usageError } from './errors.ts';

export interface FlagSpec {
  type: 'string' | 'boolean';
  /** One-letter alias, e.g. `n` for `-n`. */
  short?: string;
  /** Shown in --help; `<value>` name for string flags. */
  value?: string;
  help: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface CommandSpec {
  /** e.g. `backups list` */
  name: string;
  /** Positional argument names, e.g. ['cluster']. All are required. */
  positionals: readonly string[];
  flags: FlagSpecs;
  summary: string;
}

export interface ParsedArgs {
  positionals: Record<string, string>;
  flags: Record<string, string | boolean>;
  help: boolean;
}

export type ParseResult = { ok: true; args: ParsedArgs } | { ok: false; error: string };

function flagList(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => (s.short ? `-${s.short}/--${name}` : `--${name}`))
    .join(', ');
}

export function usageLine(spec: CommandSpec): string {
  return `kubectl kdc ${spec.name} ${spec.positionals.map((p) => `<${p}>`).join(' ')}`.trimEnd();
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${usageLine(spec)} [flags]`, '', spec.summary, '', 'Flags:'];
  const rows = Object.entries(spec.flags).map(([name, s]) => {
    const head = `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'string' ? ` ${s.value ?? 'value'}` : ''}`;
    return [head, s.help] as const;
  });
  const width = Math.max(...rows.map(([h]) => h.length));
  for (const [head, help] of rows) lines.push(`  ${head.padEnd(width)}  ${help}`);
  return `${lines.join('\n')}\n`;
}

const BOOLEAN_VALUES: Record<string, boolean> = { true: true, false: false };

export function parseArgs(argv: readonly string[], spec: CommandSpec): ParseResult {
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let help = false;
  const byShort = new Map(Object.entries(spec.flags).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]));
  const fail = (error: string): ParseResult => ({ ok: false, error: `${error} (${usageLine(spec)}; see "kubectl kdc ${spec.name} --help")` });

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      const short = arg[1]!;
      const long = byShort.get(short);
      if (!long) return fail(`unknown flag "${arg}": valid flags are ${flagList(spec.flags)}`);
      name = long;
      const rest = arg.slice(2);
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest;
    }
    const flag = spec.flags[name];
    if (!flag) return fail(`unknown flag "--${name}": valid flags are ${flagList(spec.flags)}`);
    if (name in flags) return fail(`flag --${name} is given more than once`);
    if (flag.type === 'boolean') {
      if (inline === undefined) {
        flags[name] = true;
      } else if (inline in BOOLEAN_VALUES) {
        flags[name] = BOOLEAN_VALUES[inline]!;
      } else {
        return fail(`flag --${name} is a switch: write --${name} or --${name}=false, not "${inline}"`);
      }
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-')) return fail(`flag --${name} needs a value (--${name} ${flag.value ?? 'value'})`);
      inline = next;
      i++;
    }
    if (inline === '') return fail(`flag --${name} needs a non-empty value`);
    flags[name] = inline;
  }
  if (help) return { ok: true, args: { positionals: {}, flags, help } };
  if (positionals.length < spec.positionals.length) {
    const missing = spec.positionals.slice(positionals.length).map((p) => `<${p}>`).join(' ');
    return fail(`missing ${missing}`);
  }
  if (positionals.length > spec.positionals.length) {
    return fail(`unexpected argument "${positionals[spec.positionals.length]}"`);
  }
  return { ok: true, args: { positionals: Object.fromEntries(spec.positionals.map((p, i) => [p, positionals[i]!])), flags, help } };
}

/** A string flag, else the first environment variable set (non-empty), else undefined. */
export function flagOrEnv(flags: Record<string, string | boolean>, name: string, env: Record<string, string | undefined>, envNames: readonly string[] = []): string | undefined {
  const value = flags[name];
  if (typeof value === 'string') return value;
  for (const e of envNames) {
    const v = env[e];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

export const str = (flags: Record<string, string | boolean>, name: string): string | undefined => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
export const bool = (flags: Record<string, string | boolean>, name: string): boolean => flags[name] === true;

/** A positive integer (1..2^31-1) or null. */
export function parsePositiveInt(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 2 ** 31 - 1 ? n : null;
}

/** `--timeout` of a command that waits: a positive duration, and only together with --wait. */
export function waitTimeoutSeconds(flags: Record<string, string | boolean>, defaultSeconds: number): number {
  const text = str(flags, 'timeout');
  if (text === undefined) return defaultSeconds;
  const parsed = parseDuration(text);
  if (!parsed.ok || parsed.seconds <= 0) throw usageError(`--timeout "${text}": ${parsed.ok ? 'must be more than 0' : parsed.error}`);
  if (!bool(flags, 'wait')) throw usageError('--timeout only applies with --wait');
  return parsed.seconds;
}
