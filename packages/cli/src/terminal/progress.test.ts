import { describe, expect, it } from 'vitest';
import { barLine, progressBar } from './progress.ts';

describe('progress', () => {
  it.each([
    [0, 100, '[------------------------]   0%  x'],
    [37, 100, '[#########---------------]  37%  x'],
    [150, 100, '[########################] 100%  x'],
    [undefined, 100, 'x'],
    [5, 0, 'x'],
  ])('%s of %s', (done, total, line) => {
    expect(barLine(done, total, 'x')).toBe(line);
  });

  it('redraws one line in place on a terminal, and writes a line per change elsewhere', () => {
    let tty = '';
    const onTerminal = progressBar({ tty: true, out: (t) => (tty += t), err: () => undefined });
    onTerminal.update(1, 4, 'a');
    onTerminal.update(1, 4, 'a');
    onTerminal.update(2, 4, 'b');
    onTerminal.end();
    expect(tty).toBe('\r\x1b[2K[######------------------]  25%  a\r\x1b[2K[############------------]  50%  b\n');
    let log = '';
    const inLog = progressBar({ out: (t) => (log += t), err: () => undefined });
    inLog.update(1, 4, 'a');
    inLog.update(1, 4, 'a');
    inLog.update(2, 4, 'b');
    inLog.end();
    expect(log).toBe('a\nb\n');
  });
});
