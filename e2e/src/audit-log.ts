import { closeSync, openSync, readSync, statSync } from 'node:fs';

// The OpenBao audit log of a full e2e run grows past what one string can hold (512 MiB): tests
// mark where it ends before they act and read only what was appended after the mark, in chunks.

const CHUNK = 8 * 2 ** 20;

/** The current end of the log: pass it to auditLinesSince. */
export const auditMark = (file: string): number => statSync(file).size;

/**
 * Calls `fn` with every complete line appended since `mark` and returns the new mark (a line still
 * being written is left for the next call).
 */
export function forEachAuditLineSince(file: string, mark: number, fn: (line: string) => void): number {
  const end = statSync(file).size;
  const fd = openSync(file, 'r');
  let position = mark;
  let carry = '';
  try {
    while (position < end) {
      const buffer = Buffer.alloc(Math.min(CHUNK, end - position));
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) break;
      position += n;
      const lines = (carry + buffer.subarray(0, n).toString('utf8')).split('\n');
      carry = lines.pop()!;
      for (const line of lines) if (line) fn(line);
    }
  } finally {
    closeSync(fd);
  }
  return position - Buffer.byteLength(carry);
}

/** The complete lines appended since `mark`. */
export function auditLinesSince(file: string, mark = 0): string[] {
  const lines: string[] = [];
  forEachAuditLineSince(file, mark, (line) => lines.push(line));
  return lines;
}
