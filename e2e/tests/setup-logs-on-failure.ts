import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, inject } from 'vitest';
import { tailFile } from '../src/process.ts';

// When a test fails, the tails of every server log go with the failure.
afterEach((context) => {
  if (context.task.result?.state !== 'fail') return;
  const { logDir } = inject('platform');
  for (const file of readdirSync(logDir).filter((f) => f.endsWith('.log') && !f.includes('audit'))) {
    console.error(`----- ${file} (last 30 lines) -----\n${tailFile(join(logDir, file), 30)}`);
  }
});
