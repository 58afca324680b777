// `npm run images [-- --only kms-plugin,kdc-backup] [--cold-start]`: builds (or reuses) our
// Node 24 base and the four program images into OCI layouts in the binary cache. Progress goes to
// stderr; the last stdout line is one JSON object: every image's ref, digest, layout and sizes,
// and with --cold-start each program's start-up from its image against the same from source.
import { parseArgs } from 'node:util';
import { buildImages } from './build.ts';
import { coldStarts, logImages, summaryLine } from './report.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'cold-start': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run images [-- --only <name,...>] [--cold-start]\n');
  process.exit(0);
}
const started = Date.now();
const log = (line: string) => process.stderr.write(`[images] ${line}\n`);
const only = values.only
  ?.split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const result = await buildImages({ only, log });
logImages(result, log);
const measured = values['cold-start'] ? await coldStarts(result, log) : undefined;
process.stdout.write(summaryLine(result, Math.round((Date.now() - started) / 100) / 10, measured));
