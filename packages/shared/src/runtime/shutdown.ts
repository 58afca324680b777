import type { Logger } from 'pino';

/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits. A second signal, or `stop` taking longer
 * than the grace period, exits at once with a non-zero code.
 */
export function onShutdown(stop: () => Promise<void>, options: { logger?: Logger; graceMs?: number } = {}): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    options.logger?.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      options.logger?.error('graceful shutdown timed out');
      process.exit(1);
    }, options.graceMs ?? 25_000);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        options.logger?.error({ err: (error as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}
