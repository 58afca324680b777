import { mkdirSync } from 'node:fs';
import https from 'node:https';
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
  /** Serve clients over TLS and require client certificates signed by caFile (like a Kamaji DataStore). */
  tls?: {
    certFile: string;
    keyFile: string;
    caFile: string;
    clientCertPem: string;
    clientKeyPem: string;
    caPem: string;
  };
}

export async function startEtcd(options: EtcdOptions): Promise<EtcdServer> {
  const name = options.name ?? 'etcd';
  const clientPort = options.clientPort ?? (await freePort());
  const peerPort = await freePort();
  const dataDir = options.dataDir ?? join(options.dir, `${name}-data`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const endpoint = `${options.tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
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
      ...(options.tls
        ? [
            '--client-cert-auth',
            `--trusted-ca-file=${options.tls.caFile}`,
            `--cert-file=${options.tls.certFile}`,
            `--key-file=${options.tls.keyFile}`,
          ]
        : []),
    ],
  });
  await waitFor(
    `${name} to report healthy`,
    async () => {
      if (!process.running) throw new Error(`${name} exited:\n${process.tail()}`);
      const body = JSON.parse(
        options.tls
          ? await httpsGet(`${endpoint}/health`, options.tls)
          : await (await fetch(`${endpoint}/health`)).text(),
      ) as { health?: string };
      return body.health === 'true';
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  return { name, endpoint, dataDir, process, stop: () => process.stop() };
}

function httpsGet(url: string, tls: { clientCertPem: string; clientKeyPem: string; caPem: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      { ca: tls.caPem, cert: tls.clientCertPem, key: tls.clientKeyPem, timeout: 2000 },
      (response) => {
        let body = '';
        response.on('data', (c: Buffer) => (body += c.toString()));
        response.on('end', () => resolve(body));
      },
    );
    request.on('error', reject);
    request.on('timeout', () => request.destroy(new Error('timeout')));
  });
}
