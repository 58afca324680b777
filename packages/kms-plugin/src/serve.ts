// The plugin: flags -> config -> plugin; SIGTERM drains and removes the socket.
import { createLogger, onShutdown } from '@kdc/shared';
import { helpText, parseConfig } from './config.ts';
import { startPlugin } from './plugin.ts';

const argv = process.argv.slice(2);
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
