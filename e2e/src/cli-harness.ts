// Helpers for the kubectl-kdc e2e tests: the plugin as a child process (as kubectl would run
// it), and raw etcd writes through the JSON gateway to plant rows the pre-flight must find.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openBaoCaFile } from './backup-harness.ts';
import type { PlatformState } from './platform.ts';
import { compileCacheEnv, nodeProgram } from './programs.ts';

export const KDC_BIN = fileURLToPath(new URL('../../packages/cli/src/bin.ts', import.meta.url));

export interface KdcRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment an operator would have: kubeconfig, OpenBao (root token here), S3 endpoint. */
export function kdcEnv(p: PlatformState, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  const caFile = openBaoCaFile(p, dir);
  return {
    KUBECONFIG: p.management.kubeconfig,
    OPENBAO_ADDR: p.openbao.url,
    OPENBAO_TOKEN: p.openbao.rootToken,
    OPENBAO_CACERT: caFile,
    S3_ENDPOINT: p.s3.endpoint,
    ...extra,
  };
}

export interface KdcProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  done: Promise<KdcRun>;
}

/** Starts `kubectl-kdc <args>` (Node 24 from node_modules; the run's bundle, or the sources). */
export function startKdc(args: string[], env: Record<string, string>, timeoutMs = 120_000): KdcProcess {
  const child = spawn(process.execPath, [...nodeProgram(KDC_BIN), ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...compileCacheEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<KdcRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `kubectl-kdc ${args.slice(0, 2).join(' ')} timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    done,
  };
}

export const runKdc = (args: string[], env: Record<string, string>, timeoutMs?: number) =>
  startKdc(args, env, timeoutMs).done;

async function gateway(endpoint: string, path: string, body: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${endpoint}${path}`, { method: 'POST', body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`etcd ${path} failed: HTTP ${response.status} ${await response.text()}`);
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

/** Writes raw bytes at `key` (plain http, the platform etcd). */
export const putRaw = (endpoint: string, key: string, value: Buffer) =>
  gateway(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) });

export const deleteRaw = (endpoint: string, key: string) => gateway(endpoint, '/v3/kv/deleterange', { key: b64(key) });
