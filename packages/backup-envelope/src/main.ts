#!/usr/bin/env node
// kdc-backup: the backup Job / CronJob entry point (backup, restore, rewrap, list: commands/; data-dir,
// the file steps around a restore: data-dir.ts). Results go to stdout, logs to stderr; never logs
// tokens, data keys, plaintext or ciphertext. Exit 0 done, 1 failed, 2 bad flags.
import { createLogger } from '@kdc/shared/log';
import { exitOnVersionFlag } from '@kdc/shared/version';
import { runCommand } from './commands/index.ts';
import { helpText, parseCli } from './config.ts';
import { dataDirMain } from './data-dir.ts';
import { BackupError, describeError } from './errors.ts';

const argv = process.argv.slice(2);
exitOnVersionFlag('kdc-backup', argv);
if (argv[0] === 'data-dir') process.exit(dataDirMain(argv.slice(1)));
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(helpText());
  process.exit(0);
}
const parsed = parseCli(argv, process.env);
if (!parsed.ok) {
  for (const error of parsed.errors) process.stderr.write(`kdc-backup: ${error}\n`);
  process.exit(2);
}
const { command, logLevel } = parsed.config;
const logger = createLogger('kdc-backup', { level: logLevel }, process.stderr);
const cancel = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => (logger.warn({ signal }, 'cancelling'), cancel.abort()));
try {
  process.exitCode = await runCommand(parsed.config, logger, cancel.signal);
} catch (error) {
  logger.error(
    { code: error instanceof BackupError ? error.code : 'FAILED', err: describeError(error) },
    `${command} failed`,
  );
  process.stderr.write(`kdc-backup ${command}: ${describeError(error)}\n`);
  process.exitCode = 1;
}
// Keep-alive sockets and timers must not keep a finished Job's pod running.
process.exit(process.exitCode);
