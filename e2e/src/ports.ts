import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

// Ports come from below the kernel's ephemeral range. A port 0 listener gets an ephemeral
// port, and between closing it and the child binding it, any outgoing connection of any
// process (there are thousands to the apiserver) may take it as its local port: CI saw
// EADDRINUSE that way. Below the range only explicit binds compete, and each vitest worker
// (VITEST_POOL_ID) gets its own slice so parallel test files never hand out the same port.
const LOWEST = 10_000;
const SLOTS = 9; // the global setup (0) and up to 8 workers

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST ? low : 32_768;
  } catch {
    return 32_768;
  }
}

export interface PortSlice {
  first: number;
  size: number;
}

/** The slice of ports one process may hand out: slot `slot` of the range [LOWEST, ephemeral low). */
export function portSlice(slot: number, ephemeralLowPort: number): PortSlice {
  const size = Math.floor((ephemeralLowPort - LOWEST) / SLOTS);
  if (size < 100)
    throw new Error(`ephemeral port range starts at ${ephemeralLowPort}: too low to leave test ports below it`);
  return { first: LOWEST + (slot % SLOTS) * size, size };
}

const slice = portSlice(Number(process.env.VITEST_POOL_ID ?? 0) || 0, ephemeralLow());
const handedOut = new Set<number>();

export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first candidate that nobody has been handed and that a listener can bind; `candidate` is called at most `tries` times. */
export async function pickPort(
  candidate: () => number,
  tries: number,
  taken: Set<number>,
  isFree: (port: number) => Promise<boolean>,
): Promise<number | undefined> {
  for (let tried = 0; tried < tries; tried++) {
    const port = candidate();
    if (!taken.has(port) && (await isFree(port))) return port;
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 outside the ephemeral range, never the same twice within this process. */
export async function freePort(): Promise<number> {
  // Random, not sequential: some servers quietly bind the port after theirs (OpenBao's cluster
  // listener does), and two runs on one machine rarely pick the same ports.
  const port = await pickPort(
    () => slice.first + Math.floor(Math.random() * slice.size),
    slice.size,
    handedOut,
    canListen,
  );
  if (port === undefined) throw new Error(`no free port in ${slice.first}-${slice.first + slice.size - 1}`);
  handedOut.add(port);
  return port;
}
