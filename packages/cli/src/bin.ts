#!/usr/bin/env node
import { run } from './main.ts';

const result = await run(process.argv.slice(2), { io: { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) } });
process.exitCode = result.code;
