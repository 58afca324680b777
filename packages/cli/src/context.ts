// What every command gets: environment, output sinks (streamed, so --wait shows progress as it
// happens), a clock and a sleep (tests replace them).

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: progress is a bar redrawn in place. */
  tty?: boolean;
}

export interface CommandContext {
  env: Record<string, string | undefined>;
  io: Io;
  now(): Date;
  sleep(ms: number): Promise<void>;
}

export type CommandResult = number;
