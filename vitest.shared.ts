import { basename } from 'node:path';
import { defineConfig } from 'vitest/config';

const project = basename(process.cwd());

// Workspace packages resolve to their TypeScript sources (the "source" export condition), so
// tests never depend on a stale build.
export const base = defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    // The JSON report feeds the one closing line of `npm test` (scripts/test-summary.ts).
    reporters: ['default', ['json', { outputFile: `${import.meta.dirname}/.test-results/${project}.json` }]],
  },
});
