import { spawn } from 'node:child_process';

export interface Ran {
  code: number | null;
  /** stdout and stderr as they came. */
  out: string;
  /** From spawn to exit. */
  ms: number;
}

/**
 * Runs a tool to its end and resolves with its exit code and output, whatever the code (callers
 * decide what a failure means). Each output line also goes to onLine as it comes (progress).
 * A tool that cannot start rejects, naming the package that provides it.
 */
export function runTool(
  command: string,
  args: readonly string[],
  options: { onLine?: (line: string) => void; aptPackage?: string } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const take = (data: Buffer) => {
      const text = data.toString('utf8');
      out += text;
      if (options.onLine) for (const line of text.split('\n').filter(Boolean)) options.onLine(line);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) =>
      reject(
        new Error(
          `${command} could not start${options.aptPackage ? ` (apt-get install ${options.aptPackage})` : ''}: ${error.message}`,
        ),
      ),
    );
    child.on('close', (code) => resolve({ code, out, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
  });
}

/** The last lines of a tool's output, for an error message. */
export const lastLines = (out: string, n = 20) => out.split('\n').filter(Boolean).slice(-n).join('\n');
