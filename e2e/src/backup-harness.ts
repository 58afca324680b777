// Helpers for the backup-envelope e2e tests and benchmark: the job CLI as a child process, the
// OpenBao access the platform gives a cluster's backup job (policy + Kubernetes-auth role
// backup-<cluster>), and a TCP proxy in front of S3 that can be cut mid-upload.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BackupStore } from '@kdc/backup-envelope';
import {
  KubeClient,
  OPENBAO_AUDIENCE,
  OPENBAO_K8S_AUTH_MOUNT,
  OpenBaoClient,
  clusterNames,
  openBaoAccessNames,
  requestServiceAccountToken,
  transitKeyName,
  at,
  RESOURCES,
} from '@kdc/shared';
import { writeClusterAccess } from './cluster-access.ts';
import { BACKUP_MAIN } from './images.ts';

export { BACKUP_MAIN };
import type { PlatformState } from './platform.ts';
import { compileCacheEnv, nodeProgram } from './programs.ts';

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

export function backupStore(p: PlatformState, endpoint = p.s3.endpoint, maxAttempts?: number): BackupStore {
  return BackupStore.fromSettings({
    endpoint,
    region: p.s3.region,
    bucket: p.s3.bucket,
    accessKeyId: p.s3.accessKeyId,
    secretAccessKey: p.s3.secretAccessKey,
    ...(maxAttempts ? { maxAttempts } : {}),
  });
}

export const rootOpenBao = (p: PlatformState) =>
  new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    token: p.openbao.rootToken,
    timeoutMs: 10_000,
  });

/** Environment for the job CLI: S3 from the platform, OpenBao address and CA. */
/** The platform's OpenBao CA as a file in `dir` (what OPENBAO_CACERT names). */
export function openBaoCaFile(p: PlatformState, dir: string): string {
  const caFile = join(dir, 'openbao-ca.pem');
  writeFileSync(caFile, p.openbao.caPem);
  return caFile;
}

export function cliEnv(p: PlatformState, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  const caFile = openBaoCaFile(p, dir);
  return {
    S3_ENDPOINT: p.s3.endpoint,
    S3_BUCKET: p.s3.bucket,
    S3_REGION: p.s3.region,
    S3_ACCESS_KEY_ID: p.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: p.s3.secretAccessKey,
    OPENBAO_ADDR: p.openbao.url,
    OPENBAO_CACERT: caFile,
    ETCDUTL: p.binaries.etcdutl,
    ...extra,
  };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout lines that are JSON objects. */
  json: Record<string, unknown>[];
  ms: number;
}

/** Runs `kdc-backup <args>` as a separate Node process (Node 24 from node_modules). */
export function runBackupCli(
  args: string[],
  env: Record<string, string>,
  options: { timeoutMs?: number; nodeArgs?: string[]; onStderr?: (line: string) => void } = {},
): Promise<CliRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...nodeProgram(BACKUP_MAIN), ...args], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/root',
        ...compileCacheEnv(),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (options.onStderr) for (const line of c.toString().split('\n')) if (line) options.onStderr(line);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`kdc-backup ${args[0]} timed out after ${options.timeoutMs ?? 120_000} ms\n${stderr.slice(-3000)}`),
      );
    }, options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const json = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, json, ms: performance.now() - started });
    });
  });
}

export interface BackupAccess {
  cluster: string;
  namespace: string;
  transitKey: string;
  role: string;
  tokenFile: string;
  /** Mints a fresh projected-style ServiceAccount token into tokenFile. */
  refreshToken(): Promise<void>;
}

/**
 * What the platform sets up for a cluster's backup job (SPEC 3.3): a Transit key, the backup
 * writer policy, the Kubernetes-auth role backup-<namespace>.<cluster> bound to the job's ServiceAccount
 * (audience openbao), and that ServiceAccount's token in a file.
 */
export async function backupAccess(p: PlatformState, dir: string, prefix: string): Promise<BackupAccess> {
  const kube = KubeClient.fromFile(p.management.kubeconfig);
  const root = rootOpenBao(p);
  const namespace = uniqueName(prefix);
  const cluster = uniqueName('c');
  const names = clusterNames(cluster);
  const transitKey = transitKeyName(namespace, names.autoEtcdKey);
  await kube.create(RESOURCES.namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await kube.create(at(RESOURCES.serviceAccount, namespace), {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: names.backupServiceAccount },
  });
  await root.transit().createKey(transitKey);
  await writeClusterAccess(root, namespace, cluster, 'backup');
  mkdirSync(dir, { recursive: true });
  const tokenFile = join(dir, `${cluster}-sa-token`);
  const refreshToken = async () =>
    writeFileSync(
      tokenFile,
      await requestServiceAccountToken(kube, namespace, names.backupServiceAccount, [OPENBAO_AUDIENCE], 3600),
      { mode: 0o600 },
    );
  await refreshToken();
  return {
    cluster,
    namespace,
    transitKey,
    role: openBaoAccessNames(namespace, cluster).backupRole,
    tokenFile,
    refreshToken,
  };
}

/** A token limited to the backup writer policy of `access` (for library calls in tests). */
export async function backupToken(p: PlatformState, access: BackupAccess): Promise<string> {
  const login = await new OpenBaoClient({
    endpoint: p.openbao.url,
    caBundle: p.openbao.caPem,
    timeoutMs: 10_000,
  }).loginKubernetes(OPENBAO_K8S_AUTH_MOUNT, access.role, readFileSync(access.tokenFile, 'utf8').trim());
  return login.clientToken;
}

export interface CuttableProxy {
  url: string;
  port: number;
  /** Bytes forwarded client -> server so far. */
  readonly upstreamBytes: number;
  /** Drops every connection and refuses new ones for `downMs` (forever when undefined). */
  cut(downMs?: number): void;
  /** Cut automatically once `bytes` went upstream. */
  cutAfter(bytes: number, downMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy on loopback in front of `target` (host:port) that a test can cut. */
export async function startCuttableProxy(target: { host: string; port: number }): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let upstreamBytes = 0;
  let trigger: { bytes: number; downMs: number | undefined; resolve: () => void } | undefined;
  let server: Server;
  let closed = false;
  let port = 0;

  const onConnection = (client: Socket) => {
    const upstream = createConnection(target);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => {
      upstreamBytes += chunk.length;
      if (trigger && upstreamBytes >= trigger.bytes) {
        const t = trigger;
        trigger = undefined;
        proxy.cut(t.downMs);
        t.resolve();
        return;
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(onConnection);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        port = typeof address === 'object' && address ? address.port : port;
        resolve();
      });
    });
  await listen();

  const proxy: CuttableProxy = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get upstreamBytes() {
      return upstreamBytes;
    },
    cut(downMs) {
      server.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (downMs !== undefined) {
        setTimeout(() => {
          if (!closed) void listen();
        }, downMs);
      }
    },
    cutAfter(bytes, downMs) {
      return new Promise((resolve) => (trigger = { bytes: upstreamBytes + bytes, downMs, resolve }));
    },
    async close() {
      closed = true;
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
  return proxy;
}
