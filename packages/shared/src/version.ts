// The release a program was built as. The image build (packages/images) bundles each program and
// defines __KDC_VERSION__ there; run from source it is `dev`.
declare const __KDC_VERSION__: string | undefined;

export const KDC_VERSION: string = typeof __KDC_VERSION__ === 'string' ? __KDC_VERSION__ : 'dev';

/** `--version` prints `<program> <release>` and exits 0: the same answer from every program we ship. */
export function exitOnVersionFlag(program: string, argv: readonly string[] = process.argv.slice(2)): void {
  if (!argv.includes('--version')) return;
  process.stdout.write(`${program} ${KDC_VERSION}\n`);
  process.exit(0);
}
