#!/usr/bin/env node
// The npm package's entry (`kubectl-kdc` on PATH after `npm install -g`) and the single
// executable's. The Node check comes before anything newer than the running Node is loaded.
import { nodeTooOld } from './engine.ts';

const tooOld = nodeTooOld(process.version);
if (tooOld) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(1);
}
// No top-level await: the single executable's entry is CommonJS (packages/images/src/cli-executable.ts).
void import('./run.ts')
  .then(({ run }) =>
    run(process.argv.slice(2), {
      io: { tty: process.stdout.isTTY, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
    }),
  )
  .then((result) => {
    process.exitCode = result.code;
  });
