#!/usr/bin/env node
import { run } from './main.ts';

// No top-level await: the single executable's entry is CommonJS (packages/images/src/cli-executable.ts).
void run(process.argv.slice(2), { io: { tty: process.stdout.isTTY, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) } }).then((result) => {
  process.exitCode = result.code;
});
