// One container of a pod: what the kubelet tracks about it between runs (restart count, last
// termination, probe state), and the pieces of running it that need no pod around them.
import { appendFileSync, readFileSync } from 'node:fs';
import type { ManagedProcess } from '../process.ts';
import { sleep } from '../wait.ts';
import type { ContainerSpec } from './pod-spec.ts';

export type ContainerKind = 'init' | 'sidecar' | 'container';

export interface ContainerInfo {
  name: string;
  kind: ContainerKind;
  /** The container's main process (what `kill <pid>` in a real container's PID 1 would be). */
  pid?: number;
  running: boolean;
  started: boolean;
  ready: boolean;
  restartCount: number;
  /** Exit code of the last finished run (null: killed by a signal). */
  lastExitCode?: number | null;
  /** Why it is not running (ContainerCreating, CrashLoopBackOff, ErrImagePull, ...). */
  reason?: string;
  message?: string;
  logFile: string;
}

export class ContainerState {
  readonly spec: ContainerSpec;
  readonly kind: ContainerKind;
  readonly logFile: string;
  process?: ManagedProcess;
  pid?: number;
  running = false;
  started = false;
  ready = false;
  startupDone = false;
  restartCount = 0;
  lastExitCode?: number | null;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  lastTerminated?: { exitCode: number; reason: string; startedAt?: string; finishedAt?: string };
  /** Bumped on every start; probe loops of an older run stop. */
  generation = 0;

  constructor(spec: ContainerSpec, kind: ContainerKind, logFile: string) {
    this.spec = spec;
    this.kind = kind;
    this.logFile = logFile;
  }

  /** A line of the runner's own in the container's log, where its user looks first. */
  note(text: string): void {
    appendFileSync(this.logFile, `[kamaji-runner] ${text}\n`);
  }

  info(): ContainerInfo {
    return {
      name: this.spec.name,
      kind: this.kind,
      pid: this.running ? this.pid : undefined,
      running: this.running,
      started: this.started,
      ready: this.ready,
      restartCount: this.restartCount,
      lastExitCode: this.lastExitCode,
      reason: this.reason,
      message: this.message,
      logFile: this.logFile,
    };
  }
}

/**
 * The kubelet's restart backoff before the next run (0: start now): the first restart is
 * immediate, then initial * 2^n up to max; a run longer than twice the maximum resets it.
 */
export function restartDelay(c: ContainerState, backoff: { initialMs: number; maxMs: number }): number {
  if (c.restartCount === 0) return 0;
  const ranLong = c.startedAt && c.finishedAt && Date.parse(c.finishedAt) - Date.parse(c.startedAt) > 2 * backoff.maxMs;
  if (ranLong || c.restartCount === 1) return 0;
  return Math.min(backoff.initialMs * 2 ** (c.restartCount - 2), backoff.maxMs);
}

/** The process bwrap runs for the container (bwrap forks it; nsenter and setpriv exec). */
export async function mainPid(proc: ManagedProcess): Promise<number> {
  for (let i = 0; i < 200 && proc.running; i++) {
    try {
      const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim();
      if (children) return Number(children.split(/\s+/)[0]);
    } catch {
      // not yet bwrap, or gone
    }
    await sleep(10);
  }
  return proc.pid;
}

/** SIGTERM to the container's main process, SIGKILL to its process group after the grace period. */
export async function stopContainer(c: ContainerState, graceMs: number): Promise<void> {
  const proc = c.process;
  if (!proc || !proc.running) return;
  try {
    process.kill(c.pid ?? proc.pid, 'SIGTERM');
  } catch {
    // gone
  }
  const end = Date.now() + graceMs;
  while (proc.running && Date.now() < end) await sleep(50);
  if (proc.running) {
    proc.killNow();
    while (proc.running) await sleep(20);
  }
}
