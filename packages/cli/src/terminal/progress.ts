// Long work (a rewrap, a restore, the etcd scan of min-decryption) shows a bar redrawn in place
// on a terminal, and one line per change anywhere else (a log, CI, a pipe), so a transcript
// stays readable.
import type { Io } from '../context.ts';

const WIDTH = 24;

/** `[#########---------------]  37%  <text>` (pure); without a total, the text alone. */
export function barLine(done: number | undefined, total: number | undefined, text: string): string {
  if (done === undefined || !total) return text;
  const fraction = Math.max(0, Math.min(1, done / total));
  const filled = Math.round(fraction * WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${text}`;
}

export interface ProgressBar {
  update(done: number | undefined, total: number | undefined, text: string): void;
  /** Ends the bar's line (a terminal), so what follows starts on its own. */
  end(): void;
}

export function progressBar(io: Io): ProgressBar {
  let shown = '';
  let drawn = false;
  return {
    update(done, total, text) {
      const line = io.tty ? barLine(done, total, text) : text;
      if (line === shown) return;
      shown = line;
      if (io.tty) {
        io.out(`\r\x1b[2K${line}`);
        drawn = true;
      } else {
        io.out(`${line}\n`);
      }
    },
    end() {
      if (drawn) io.out('\n');
      drawn = false;
    },
  };
}
