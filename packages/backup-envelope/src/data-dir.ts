// `kdc-backup data-dir prepare|swap`: the two file steps around a restore, in the kdc-backup image
// itself (no shell image). prepare removes a half-written restore target of an earlier attempt;
// swap keeps the live data dir as the previous one and moves the restored one into place, the only
// step that touches the live data dir, run after the restore verified and wrote everything.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parseArgs } from 'node:util';

export const DATA_DIR_HELP = `kdc-backup data-dir prepare --restoring=<dir>
kdc-backup data-dir swap --restoring=<dir> --data-dir=<dir> --previous=<dir>
  prepare: remove <restoring> (a half-written restore of an earlier attempt).
  swap:    remove <previous>, move <data-dir> (if any) to <previous>, then <restoring> to <data-dir>.
Absolute paths only. Exit 0 done, 1 failed, 2 bad flags.
`;

export type DataDirStep =
  { step: 'prepare'; restoring: string } | { step: 'swap'; restoring: string; dataDir: string; previous: string };

export function parseDataDirArgs(argv: string[]): { ok: true; step: DataDirStep } | { ok: false; error: string } {
  const [step, ...rest] = argv;
  if (step !== 'prepare' && step !== 'swap')
    return { ok: false, error: `data-dir: ${step ? `unknown step "${step}"` : 'missing step'}: use prepare or swap` };
  let values: Record<string, string | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: { restoring: { type: 'string' }, 'data-dir': { type: 'string' }, previous: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    return { ok: false, error: `data-dir ${step}: ${(error as Error).message.split('\n')[0]}` };
  }
  const wanted = step === 'prepare' ? ['restoring'] : ['restoring', 'data-dir', 'previous'];
  for (const flag of Object.keys(values))
    if (!wanted.includes(flag)) return { ok: false, error: `data-dir ${step}: --${flag} is not a flag of ${step}` };
  for (const flag of wanted) {
    const value = values[flag];
    if (!value) return { ok: false, error: `data-dir ${step}: --${flag} is required` };
    if (!isAbsolute(value) || value === '/')
      return { ok: false, error: `data-dir ${step}: --${flag} "${value}" must be an absolute path below /` };
  }
  const dirs = wanted.map((f) => values[f]!);
  if (new Set(dirs).size !== dirs.length)
    return { ok: false, error: `data-dir ${step}: --${wanted.join(', --')} must be three different directories` };
  return {
    ok: true,
    step:
      step === 'prepare'
        ? { step, restoring: values.restoring! }
        : { step, restoring: values.restoring!, dataDir: values['data-dir']!, previous: values.previous! },
  };
}

/** Runs one step; what it did, for the job's log. */
export function runDataDirStep(step: DataDirStep): string {
  if (step.step === 'prepare') {
    const existed = existsSync(step.restoring);
    rmSync(step.restoring, { recursive: true, force: true });
    return existed ? `removed ${step.restoring} (an earlier attempt)` : `${step.restoring} is clear`;
  }
  if (!existsSync(step.restoring))
    throw new Error(
      `nothing restored at ${step.restoring}: the restore step did not finish; the live data dir ${step.dataDir} is untouched`,
    );
  rmSync(step.previous, { recursive: true, force: true });
  const kept = existsSync(step.dataDir);
  if (kept) renameSync(step.dataDir, step.previous);
  renameSync(step.restoring, step.dataDir);
  return `${step.restoring} is now ${step.dataDir}${kept ? `; the data dir before the restore is ${step.previous}` : ''}`;
}

/** `kdc-backup data-dir <step>`: runs one step; returns the exit code (0 done, 1 refused, 2 bad flags). */
export function dataDirMain(argv: string[]): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(DATA_DIR_HELP);
    return 0;
  }
  const parsed = parseDataDirArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`kdc-backup: ${parsed.error}\n`);
    return 2;
  }
  try {
    process.stderr.write(`kdc-backup data-dir ${parsed.step.step}: ${runDataDirStep(parsed.step)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`kdc-backup data-dir ${parsed.step.step}: ${(error as Error).message}\n`);
    return 1;
  }
}
