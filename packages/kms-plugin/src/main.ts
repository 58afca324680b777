#!/usr/bin/env node
// kms-plugin entry point. `prepare-socket-dir` (the init container's step, socket-dir.ts) is
// dispatched before the plugin and its dependencies load: the init container of every encrypted
// control-plane pod start should cost a chown, not the plugin's start-up.
import { exitOnVersionFlag } from '@kdc/shared/version';
import { parseSocketDirArgs, prepareSocketDir, SOCKET_DIR_HELP } from './transport/socket-dir.ts';

const argv = process.argv.slice(2);
exitOnVersionFlag('kms-plugin', argv);
// An image may bake plugin flags into its entrypoint (`node main.js --key-id-form=kdc1`); the init
// container's args come after them, and the step has no use for them.
const step = argv.indexOf('prepare-socket-dir');
if (step >= 0 && argv.slice(0, step).every((a) => a.startsWith('--'))) {
  if (argv.includes('--help')) {
    process.stdout.write(SOCKET_DIR_HELP);
    process.exit(0);
  }
  const args = parseSocketDirArgs(argv.slice(step + 1));
  if (!args.ok) {
    process.stderr.write(`kms-plugin: ${args.error}\n`);
    process.exit(2);
  }
  try {
    process.stderr.write(`kms-plugin prepare-socket-dir: ${prepareSocketDir(args.dir, args.uid, args.gid)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`kms-plugin prepare-socket-dir: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
await import('./serve.ts');
