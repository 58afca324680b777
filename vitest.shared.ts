import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

const project = basename(process.cwd());

// Workspace packages resolve to their TypeScript sources, so tests never depend on a stale build
// (the same thing the "source" export condition does for `node --conditions=source`).
export const base = defineConfig({
  resolve: {
    alias: [{ find: /^@kdc\/([a-z0-9-]+)$/, replacement: `${import.meta.dirname}/packages/$1/src/index.ts` }],
  },
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // The JSON report feeds the one closing line of `npm test` (scripts/test-summary.ts).
    reporters: ['default', ['json', { outputFile: `${import.meta.dirname}/.test-results/${project}.json` }]],
  },
});
