// kubectl-kdc: operator commands (kubectl finds it on PATH as the plugin `kubectl kdc`).
import { KDC_VERSION } from '@kdc/shared/version';
import { commandHelp, parseArgs, type CommandSpec, type ParsedArgs } from './terminal/args.ts';
import * as backupsList from './commands/backups-list.ts';
import * as backupsRestore from './commands/backups-restore.ts';
import * as backupsRewrap from './commands/backups-rewrap.ts';
import { COMPLETION_SCRIPTS, completionProtocol, completionSpec, type CommandTable } from './commands/completion.ts';
import type { CommandContext, Io } from './context.ts';
import { CliError, EXIT } from './errors.ts';
import * as fleet from './commands/fleet.ts';
import * as keysAdopt from './commands/keys-adopt.ts';
import * as keysMinDecryption from './commands/keys-min-decryption.ts';
import * as rewrapEtcd from './commands/rewrap-etcd.ts';
import * as status from './commands/status.ts';

export const USAGE = `kubectl kdc - per-tenant etcd encryption for KdcClusters

Usage:
  kubectl kdc fleet [-n namespace | -A] [-o json|yaml|wide|name]
  kubectl kdc status <cluster> [-n namespace] [-o json|yaml|name]
  kubectl kdc rewrap-etcd <cluster> [--wait] [--timeout 1h] [-n namespace]
  kubectl kdc backups list|restore|rewrap <cluster> [-n namespace]
      backups list <cluster> [-o json|yaml|name]
      backups rewrap <cluster> [--dry-run]
      backups restore <cluster> <key|latest> [--wait] [--timeout 30m]
  kubectl kdc keys min-decryption <kmskey> --to N [--confirm] [-n namespace] [--etcd-endpoint URL]
  kubectl kdc keys adopt <kmskey> --transit-key <name> [--confirm] [-n namespace]   (platform admins)
  kubectl kdc completion bash|zsh|plugin
  kubectl kdc version

Every command takes --kubeconfig, --context, -n/--namespace and --request-timeout, as kubectl does.

Examples:
  kubectl kdc fleet                                   # every encrypted cluster: key age, coverage, plugin, backup
  kubectl kdc status prod -n acme-shop -o yaml
  kubectl kdc rewrap-etcd prod -n acme-shop --wait --timeout 1h
  kubectl kdc backups restore prod latest -n acme-shop --wait

Exit codes: 0 done (or nothing to do), 1 refused or failed (the message says why and what to run),
2 the invocation is wrong (unknown flag, missing argument, bad value).

Run "kubectl kdc <command> --help" for a command's flags.
`;

export const COMMANDS = ['fleet', 'status', 'rewrap-etcd', 'backups', 'keys', 'completion', 'version', 'help'] as const;

interface Command {
  spec: CommandSpec;
  execute(args: ParsedArgs, ctx: CommandContext): Promise<number>;
}

/** Commands without a subcommand. */
const TOP_LEVEL: Record<string, Command> = { fleet, status, 'rewrap-etcd': rewrapEtcd };

const SUBCOMMANDS: Record<string, Record<string, Command>> = {
  backups: { list: backupsList, rewrap: backupsRewrap, restore: backupsRestore },
  keys: { 'min-decryption': keysMinDecryption, adopt: keysAdopt },
};

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Streams output as it is produced (the result still carries all of it). */
  io?: Partial<Io>;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export async function run(argv: string[], options: RunOptions = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    tty: options.io?.tty ?? false,
    out: (text) => {
      stdout += text;
      options.io?.out?.(text);
    },
    err: (text) => {
      stderr += text;
      options.io?.err?.(text);
    },
  };
  const ctx: CommandContext = {
    env: options.env ?? process.env,
    io,
    now: options.now ?? (() => new Date()),
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
  const code = await dispatch(argv, ctx);
  return { code, stdout, stderr };
}

const COMPLETION_TABLE: CommandTable = {
  commands: COMMANDS,
  top: {
    ...Object.fromEntries(Object.entries(TOP_LEVEL).map(([name, c]) => [name, c.spec])),
    completion: completionSpec,
  },
  groups: Object.fromEntries(
    Object.entries(SUBCOMMANDS).map(([name, group]) => [
      name,
      Object.fromEntries(Object.entries(group).map(([sub, c]) => [sub, c.spec])),
    ]),
  ),
};

async function dispatch(argv: string[], ctx: CommandContext): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    ctx.io.out(USAGE);
    return EXIT.ok;
  }
  if (command === 'version' || command === '--version') {
    ctx.io.out(`kubectl-kdc ${KDC_VERSION}\n`);
    return EXIT.ok;
  }
  if (command === '__complete') {
    ctx.io.out(completionProtocol(argv.slice(1), COMPLETION_TABLE));
    return EXIT.ok;
  }
  if (command === 'completion') {
    const script = sub === undefined ? undefined : COMPLETION_SCRIPTS[sub];
    if (!script) {
      ctx.io.err(`"kubectl kdc completion" needs a shell: ${Object.keys(COMPLETION_SCRIPTS).join(', ')}\n`);
      return EXIT.usage;
    }
    ctx.io.out(script);
    return EXIT.ok;
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    ctx.io.err(`unknown command "${command}": run "kubectl kdc help" for the list of commands\n`);
    return EXIT.usage;
  }
  const single = TOP_LEVEL[command];
  if (single)
    return execute(
      single,
      [sub, ...rest].filter((a): a is string => a !== undefined),
      ctx,
    );
  const group = SUBCOMMANDS[command];
  if (!group) {
    ctx.io.err(`"${command}" is not available in this build yet\n`);
    return EXIT.failure;
  }
  const names = Object.keys(group).join(', ');
  if (!sub || sub === '--help' || sub === '-h') {
    if (sub) {
      ctx.io.out(
        `Usage: kubectl kdc ${command} ${Object.keys(group).join('|')} ...\n\n${Object.values(group)
          .map((c) => commandHelp(c.spec))
          .join('\n')}`,
      );
      return EXIT.ok;
    }
    ctx.io.err(`"kubectl kdc ${command}" needs a subcommand: ${names}\n`);
    return EXIT.usage;
  }
  const cmd = group[sub];
  if (!cmd) {
    ctx.io.err(`unknown subcommand "${command} ${sub}": use one of ${names}\n`);
    return EXIT.usage;
  }
  return execute(cmd, rest, ctx);
}

async function execute(cmd: Command, argv: string[], ctx: CommandContext): Promise<number> {
  const parsed = parseArgs(argv, cmd.spec);
  if (!parsed.ok) {
    ctx.io.err(`error: ${parsed.error}\n`);
    return EXIT.usage;
  }
  if (parsed.args.help) {
    ctx.io.out(commandHelp(cmd.spec));
    return EXIT.ok;
  }
  try {
    return await cmd.execute(parsed.args, ctx);
  } catch (error) {
    if (error instanceof CliError) {
      ctx.io.err(`error: ${error.message}\n`);
      return error.code;
    }
    // Unexpected: say what it was without a stack (run with NODE_DEBUG or report it).
    ctx.io.err(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}
