// The plugin's commands' flags: a spec per command (help text, short aliases), parsed by
// node:util.parseArgs, with errors that name the flag to fix.
import { parseArgs as nodeParseArgs } from 'node:util';
import { parseDuration } from '@kdc/shared';
import { usageError } from '../errors.ts';

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

/**
 * The command's flags through node:util's parser, with kubectl's (pflag's) habits on top:
 * `--switch=true|false`, `-n=ns`, and errors that name the flag and the command's usage.
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec): ParseResult {
  const fail = (error: string): ParseResult => ({
    ok: false,
    error: `${error} (${usageLine(spec)}; see "kubectl kdc ${spec.name} --help")`,
  });
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, s] of Object.entries(spec.flags))
    options[name] = { type: s.type, ...(s.short ? { short: s.short } : {}) };
  const switches = new Set(
    Object.entries(spec.flags)
      .filter(([, s]) => s.type === 'boolean')
      .map(([name]) => name),
  );
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    const inline = /^--([^=]+)=(.*)$/s.exec(arg);
    if (inline && switches.has(inline[1]!)) {
      if (inline[2] !== 'true' && inline[2] !== 'false')
        return fail(
          `flag --${inline[1]} is a switch: write --${inline[1]} or --${inline[1]}=false, not "${inline[2]}"`,
        );
      args.push(inline[2] === 'true' ? `--${inline[1]}` : `--no-${inline[1]}`);
    } else {
      args.push(arg);
    }
  }
  let parsed: ReturnType<
    typeof nodeParseArgs<{
      args: string[];
      options: typeof options;
      tokens: true;
      allowPositionals: true;
      allowNegative: true;
      strict: true;
    }>
  >;
  try {
    parsed = nodeParseArgs({ args, options, strict: true, allowPositionals: true, allowNegative: true, tokens: true });
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const named = /Option '(?:-\w, )?(--?[\w-]+)/.exec(message)?.[1] ?? /'(--?[\w-]+)'/.exec(message)?.[1] ?? '';
    const name = named.replace(/^--?(no-)?/, '');
    const long = named.length === 2 ? Object.entries(spec.flags).find(([, s]) => s.short === named[1])?.[0] : name;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      return fail(`unknown flag "${named}": valid flags are ${flagList(spec.flags)}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && long && spec.flags[long]) {
      const flag = spec.flags[long];
      return flag.type === 'boolean'
        ? fail(`flag --${long} is a switch: write --${long} or --${long}=false`)
        : fail(`flag --${long} needs a value (--${long} ${flag.value ?? 'value'})`);
    }
    return fail(message.split('\n')[0]!);
  }
  const flags: Record<string, string | boolean> = {};
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || token.name === 'help') continue;
    if (seen.has(token.name)) return fail(`flag --${token.name} is given more than once`);
    seen.add(token.name);
    if (options[token.name]!.type === 'boolean') {
      flags[token.name] = !token.rawName.startsWith('--no-');
      continue;
    }
    // pflag reads -n=ns as ns; node:util keeps the "=".
    const value =
      token.rawName.length === 2 && token.inlineValue && token.value?.startsWith('=')
        ? token.value.slice(1)
        : (token.value ?? '');
    if (value === '') return fail(`flag --${token.name} needs a non-empty value`);
    flags[token.name] = value;
  }
  if (parsed.values.help) return { ok: true, args: { positionals: {}, flags, help: true } };
  const positionals = parsed.positionals;
  if (positionals.length < spec.positionals.length) {
    const missing = spec.positionals
      .slice(positionals.length)
      .map((p) => `<${p}>`)
      .join(' ');
    return fail(`missing ${missing}`);
  }
  if (positionals.length > spec.positionals.length) {
    return fail(`unexpected argument "${positionals[spec.positionals.length]}"`);
  }
  return {
    ok: true,
    args: { positionals: Object.fromEntries(spec.positionals.map((p, i) => [p, positionals[i]!])), flags, help: false },
  };
}

/** A string flag, else the first environment variable set (non-empty), else undefined. */
export function flagOrEnv(
  flags: Record<string, string | boolean>,
  name: string,
  env: Record<string, string | undefined>,
  envNames: readonly string[] = [],
): string | undefined {
  const value = flags[name];
  if (typeof value === 'string') return value;
  for (const e of envNames) {
    const v = env[e];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

export const str = (flags: Record<string, string | boolean>, name: string): string | undefined =>
  typeof flags[name] === 'string' ? flags[name] : undefined;
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
  if (!parsed.ok || parsed.seconds <= 0)
    throw usageError(`--timeout "${text}": ${parsed.ok ? 'must be more than 0' : parsed.error}`);
  if (!bool(flags, 'wait')) throw usageError('--timeout only applies with --wait');
  return parsed.seconds;
}
