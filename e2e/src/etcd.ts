import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';

export interface EtcdServer {
  name: string;
  endpoint: string;
  dataDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface EtcdOptions {
  binary: string;
  dir: string;
  logDir: string;
  name?: string;
  detached?: boolean;
  /** Reuse an existing data dir (restart, restore). */
  dataDir?: string;
  clientPort?: number;
}

export async function startEtcd(options: EtcdOptions): Promise<EtcdServer> {
  const name = options.name ?? 'etcd';
  const clientPort = options.clientPort ?? (await freePort());
  const peerPort = await freePort();
  const dataDir = options.dataDir ?? join(options.dir, `${name}-data`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const process = ManagedProcess.start({
    name,
    binary: options.binary,
    logFile: join(options.logDir, `${name}.log`),
    detached: options.detached,
    args: [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${name}=${peer}`,
      '--log-level=warn',
      // Test data is disposable; fsync dominates start-up and write latency on shared disks.
      '--unsafe-no-fsync',
      '--quota-backend-bytes=8589934592',
    ],
  });
  await waitFor(`${name} to report healthy`, async () => {
    if (!process.running) throw new Error(`${name} exited:\n${process.tail()}`);
    const response = await fetch(`${endpoint}/health`);
    const body = (await response.json()) as { health?: string };
    return body.health === 'true';
  }, { timeoutMs: 60_000, intervalMs: 100 });
  return { name, endpoint, dataDir, process, stop: () => process.stop() };
}
