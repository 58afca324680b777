#!/usr/bin/env node
// kms-plugin entry point: flags -> config -> plugin; SIGTERM drains and removes the socket.
// `prepare-socket-dir` is the init container's step (socket-dir.ts).
import { createLogger, exitOnVersionFlag, onShutdown } from '@kdc/shared';
import { helpText, parseConfig } from './config.ts';
import { startPlugin } from './plugin.ts';
import { parseSocketDirArgs, prepareSocketDir, SOCKET_DIR_HELP } from './socket-dir.ts';

const argv = process.argv.slice(2);
exitOnVersionFlag('kms-plugin', argv);
if (argv[0] === 'prepare-socket-dir') {
  if (argv.includes('--help')) {
    process.stdout.write(SOCKET_DIR_HELP);
    process.exit(0);
  }
  const args = parseSocketDirArgs(argv.slice(1));
  if (!args.ok) {
    process.stderr.write(`kms-plugin: ${args.error}\n`);
    process.exit(2);
  }
  try {
    process.stderr.write(`kms-plugin prepare-socket-dir: ${prepareSocketDir(args.dir, args.uid, args.gid)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`kms-plugin prepare-socket-dir: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(helpText());
  process.exit(0);
}
const parsed = parseConfig(argv, process.env);
if (!parsed.ok) {
  for (const error of parsed.errors) process.stderr.write(`kms-plugin: ${error}\n`);
  process.exit(2);
}
const logger = createLogger('kms-plugin', { level: parsed.config.logLevel });
try {
  const plugin = await startPlugin(parsed.config, logger);
  onShutdown(() => plugin.stop(), { logger, graceMs: 25_000 });
} catch (error) {
  logger.error({ err: (error as Error).message }, 'kms-plugin failed to start');
  process.exit(1);
}
