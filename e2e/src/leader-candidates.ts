import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const CANDIDATE = fileURLToPath(new URL('./leader-candidate.ts', import.meta.url));
const SKEWED_CLOCK = fileURLToPath(new URL('./skewed-clock.ts', import.meta.url));

export interface CandidateEvent {
  event: 'started' | 'leading' | 'stopped';
  identity: string;
  /** When this (the test) process read the line, on its own clock: comparable across candidates. */
  receivedAt: number;
}

export interface Candidate {
  identity: string;
  child: ChildProcess;
  events: CandidateEvent[];
  /** When the candidate first said it leads / stopped leading, if it did. */
  first(event: CandidateEvent['event']): number | undefined;
}

/**
 * Runs e2e/src/leader-candidate.ts (a LeaderElector and nothing else) as its own process. With
 * `clockSkewMs` its wall clock runs that far off (skewed-clock.ts), so every timestamp it writes
 * into the Lease is wrong by as much.
 */
export function startCandidate(input: {
  kubeconfig: string;
  namespace: string;
  lease: string;
  identity: string;
  leaseSeconds: number;
  renewDeadlineSeconds?: number;
  clockSkewMs?: number;
}): Candidate {
  const preload = input.clockSkewMs ? ['--import', SKEWED_CLOCK] : [];
  const timings = [
    String(input.leaseSeconds),
    ...(input.renewDeadlineSeconds ? [String(input.renewDeadlineSeconds)] : []),
  ];
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      ...preload,
      CANDIDATE,
      input.kubeconfig,
      input.namespace,
      input.lease,
      input.identity,
      ...timings,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, KDC_CLOCK_SKEW_MS: String(input.clockSkewMs ?? 0) },
    },
  );
  const events: CandidateEvent[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const receivedAt = Date.now();
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      const { event, identity } = JSON.parse(line) as CandidateEvent;
      events.push({ event, identity, receivedAt });
    }
  });
  return {
    identity: input.identity,
    child,
    events,
    first: (event) => events.find((e) => e.event === event)?.receivedAt,
  };
}

/** The apiserver a kubeconfig points at. */
export function apiserverAddress(kubeconfig: string): { host: string; port: number } {
  const config = parse(readFileSync(kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  const url = new URL(config.clusters[0]!.cluster.server);
  return { host: url.hostname, port: Number(url.port || 443) };
}

/** A copy of `kubeconfig` that reaches the same apiserver (same CA and credentials) through `address` (host:port). */
export function kubeconfigVia(kubeconfig: string, address: string, file: string): string {
  const config = parse(readFileSync(kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
  for (const { cluster } of config.clusters) cluster.server = `https://${address}`;
  writeFileSync(file, stringify(config), { mode: 0o600 });
  return file;
}
