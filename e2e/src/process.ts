import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { sleep } from './wait.ts';
import { compileCacheEnv } from './programs.ts';

const live = new Set<ManagedProcess>();

// If the test runner or CLI exits without stopping what it started (an exception, a failed
// assertion in setup), kill the whole process groups on the way out.
process.once('exit', () => {
  for (const p of live) p.killNow();
});
// A signal ends the process without 'exit' handlers running (vitest stops its workers that way,
// and people press Ctrl-C): kill what we started, then die of the same signal.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    for (const p of live) p.killNow();
    process.kill(process.pid, signal);
  });
}

export interface StartOptions {
  name: string;
  binary: string;
  args: string[];
  logFile: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Keep running after this process exits (the `platform up` CLI). */
  detached?: boolean;
}

/** A server process in its own process group, with its output in a log file. */
export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  private readonly child: ChildProcess;
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(options: StartOptions, child: ChildProcess) {
    this.name = options.name;
    this.logFile = options.logFile;
    this.child = child;
    if (child.pid === undefined) throw new Error(`could not start ${options.name} (${options.binary})`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.exitCode = code;
        live.delete(this);
        resolve(code);
      }),
    );
  }

  static start(options: StartOptions): ManagedProcess {
    const fd = openSync(options.logFile, 'a');
    const child = spawn(options.binary, options.args, {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        ...compileCacheEnv(),
        ...options.env,
      },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    const managed = new ManagedProcess(options, child);
    if (options.detached) child.unref();
    else live.add(managed);
    return managed;
  }

  /** Exit code once exited (null when killed by a signal), undefined while running. */
  get code(): number | null | undefined {
    return this.exitCode;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Last `lines` lines of the log, for failure messages. */
  tail(lines = 40): string {
    return tailFile(this.logFile, lines);
  }

  killNow(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(-this.pid, 'SIGTERM');
    } catch {
      return;
    }
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      this.killNow();
      await this.exited;
    }
  }

  /** Stops with SIGKILL only: for outage tests that simulate a crash. */
  async kill(): Promise<void> {
    this.killNow();
    await this.exited;
  }
}

export function tailFile(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${path})`;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills a process group we started in an earlier run (by pid, from the state file). */
export async function killGroup(pid: number, graceMs = 10_000): Promise<void> {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
    while (pidAlive(pid)) await sleep(50);
  }
}
