// kubectl's -o: one flag, the same formats on every command that prints objects. A table by
// default; wide adds columns; json and yaml print the whole document; name prints kind/name lines.
import { stringify } from 'yaml';
import { str, type FlagSpecs } from './args.ts';
import { usageError } from '../errors.ts';

export const OUTPUT_FORMATS = ['json', 'yaml', 'wide', 'name'] as const;
export type OutputFormat = 'table' | (typeof OUTPUT_FORMATS)[number];

export const OUTPUT_FLAG: FlagSpecs = {
  output: {
    type: 'string',
    short: 'o',
    value: 'format',
    help: `output format: ${OUTPUT_FORMATS.join('|')} (default: a table)`,
  },
};

/** The -o value; `--json` (kept from earlier releases) is -o json. */
export function outputFormat(flags: Record<string, string | boolean>): OutputFormat {
  const value = str(flags, 'output');
  if (flags.json === true) {
    if (value && value !== 'json') throw usageError(`--json and -o ${value} disagree: use -o ${value} alone`);
    return 'json';
  }
  if (value === undefined) return 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value))
    throw usageError(`-o "${value}": use one of ${OUTPUT_FORMATS.join(', ')}`);
  return value as OutputFormat;
}

export interface Printable {
  /** The json/yaml document. */
  document: unknown;
  /** `kind/name` lines for -o name. */
  names: readonly string[];
  table(): string;
  /** More columns; default the table. */
  wide?(): string;
}

export function render(format: OutputFormat, p: Printable): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(p.document, null, 2)}\n`;
    case 'yaml':
      return stringify(p.document);
    case 'name':
      return p.names.map((n) => `${n}\n`).join('');
    case 'wide':
      return (p.wide ?? p.table)();
    case 'table':
      return p.table();
  }
}
