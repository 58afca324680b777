import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { defineConfig } from 'vitest/config';

/** `@kdc/<package>/<subpath>` -> the subpath's "source" export, read from each package.json. */
function subpathAliases() {
  const packages = join(import.meta.dirname, 'packages');
  return readdirSync(packages).flatMap((dir) => {
    const manifest = JSON.parse(readFileSync(join(packages, dir, 'package.json'), 'utf8')) as {
      name: string;
      exports?: Record<string, { source?: string }>;
    };
    return Object.entries(manifest.exports ?? {})
      .filter(([subpath, target]) => subpath !== '.' && target.source)
      .map(([subpath, target]) => ({
        find: `${manifest.name}/${subpath.slice(2)}`,
        replacement: join(packages, dir, target.source!),
      }));
  });
}

const project = basename(process.cwd());

// Workspace packages resolve to their TypeScript sources, so tests never depend on a stale build
// (the same thing the "source" export condition does for `node --conditions=source`).
export const base = defineConfig({
  resolve: {
    alias: [
      ...subpathAliases(),
      { find: /^@kdc\/([a-z0-9-]+)$/, replacement: `${import.meta.dirname}/packages/$1/src/index.ts` },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // The JSON report feeds the one closing line of `npm test` (scripts/test-summary.ts).
    reporters: ['default', ['json', { outputFile: `${import.meta.dirname}/.test-results/${project}.json` }]],
  },
});
