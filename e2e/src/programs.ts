import { readFileSync } from 'node:fs';

// How the e2e run starts our programs. From its TypeScript sources a program took ~1.4 s of CPU
// to start (Node resolves and strips a few hundred modules), and a run starts ~500 of them on two
// cores. So the global setup bundles each program once per run (program-bundles.ts) and every
// start loads one file: ~0.4 s. Without a run's bundles (a bench, a script run alone) the sources
// are used, as before.

/** Set by the global setup: a JSON file mapping each program's source entry to its bundle. */
export const BUNDLES_ENV = 'KDC_E2E_BUNDLES';

let loaded: Record<string, string> | undefined;

function bundles(): Record<string, string> {
  const file = process.env[BUNDLES_ENV];
  if (!file) return {};
  loaded ??= JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
  return loaded;
}

/**
 * Node's arguments that run the program whose source entry is `main`: its bundle when this run
 * built one, else the source. Node options go before them.
 */
export function nodeProgram(main: string): string[] {
  const bundled = bundles()[main];
  return bundled ? [bundled] : ['--conditions=source', main];
}

/** The run's Node compile cache, for children started with a minimal env. */
export function compileCacheEnv(): Record<string, string> {
  const dir = process.env.NODE_COMPILE_CACHE;
  return dir ? { NODE_COMPILE_CACHE: dir } : {};
}
