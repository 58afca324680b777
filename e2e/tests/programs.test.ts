import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { KDC_BIN } from '../src/cli-harness.ts';
import { ENCRYPTION_RECONCILER_MAIN } from '../src/encryption-reconciler.ts';
import { BACKUP_MAIN, PLUGIN_MAIN } from '../src/images.ts';
import { K8_MANAGER_MAIN } from '../src/k8-manager.ts';
import { BUNDLES_ENV, nodeProgram } from '../src/programs.ts';

// The run starts our programs from the bundles its global setup made (programs.ts). If a worker
// lost the variable, every test would still pass, only slower: this one fails instead.

const PROGRAMS: [string, string][] = [
  ['k8-manager', K8_MANAGER_MAIN],
  ['encryption-reconciler', ENCRYPTION_RECONCILER_MAIN],
  ['kms-plugin', PLUGIN_MAIN],
  ['kdc-backup', BACKUP_MAIN],
  ['kubectl-kdc', KDC_BIN],
];

describe("the run's programs", () => {
  it.each(PROGRAMS)('%s starts from its bundle and reports what its sources do', async (name, main) => {
    expect(process.env[BUNDLES_ENV], 'the global setup names the bundles').toBeTruthy();
    const args = nodeProgram(main);
    expect(args).toHaveLength(1);
    expect(args[0]).toMatch(new RegExp(`/${name}/main\\.js$`));
    expect(existsSync(args[0]!)).toBe(true);
    const run = (argv: string[]) => promisify(execFile)(process.execPath, [...argv, '--version']);
    const [bundled, source] = await Promise.all([run(args), run(['--conditions=source', main])]);
    expect(bundled.stdout).toBe(`${name} dev\n`);
    expect(bundled.stdout).toBe(source.stdout);
  });
});
