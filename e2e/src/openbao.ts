import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OpenBaoClient } from '@kdc/shared';
import { issueCert, type CertificateAuthority } from './pki.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';

// The secrets backend of the platform. OpenBao cannot be fetched through this machine's Go module
// proxy (its root module is refused), so the platform runs HashiCorp Vault, built the same way;
// the two are wire-compatible for everything used here. Vault OSS has no namespaces and no
// static seal: persistence is file storage, and "automatic unseal" is the platform unsealing
// with the key it stored at init, on every (re)start.

export interface OpenBaoServer {
  url: string;
  port: number;
  caPem: string;
  rootToken: string;
  dataDir: string;
  auditLog: string;
  flavor: 'vault' | 'openbao';
  process: ManagedProcess;
  /** A client with the root token. */
  client(): OpenBaoClient;
  stop(): Promise<void>;
  /** Start again on the same storage and port, unsealed. */
  restart(): Promise<void>;
}

export interface OpenBaoOptions {
  binary: string;
  dir: string;
  logDir: string;
  ca: CertificateAuthority;
  detached?: boolean;
}

interface InitRecord {
  unsealKey: string;
  rootToken: string;
}

export async function startOpenBao(options: OpenBaoOptions): Promise<OpenBaoServer> {
  const dir = join(options.dir, 'openbao');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  // Named explicitly: left out, OpenBao binds its cluster listener on port + 1, which nobody reserved.
  const clusterPort = await freePort();
  const cert = issueCert(options.ca, dir, {
    name: 'openbao',
    commonName: 'openbao',
    dnsNames: ['localhost', 'openbao'],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  const url = `https://127.0.0.1:${port}`;
  const configFile = join(dir, 'config.hcl');
  writeFileSync(
    configFile,
    [
      `storage "file" {\n  path = "${dataDir}"\n}`,
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_cert_file = "${cert.certFile}"\n  tls_key_file = "${cert.keyFile}"\n  cluster_address = "127.0.0.1:${clusterPort}"\n}`,
      `api_addr = "${url}"`,
      `cluster_addr = "https://127.0.0.1:${clusterPort}"`,
      'disable_mlock = true',
      'ui = false',
      'log_level = "info"',
    ].join('\n'),
  );
  const initFile = join(dir, 'init.json');
  const auditLog = join(options.logDir, 'openbao-audit.log');
  let proc!: ManagedProcess;
  const caPem = options.ca.certPem;
  const anonymous = new OpenBaoClient({ endpoint: url, caBundle: caPem, timeoutMs: 5000 });

  const launch = async () => {
    proc = ManagedProcess.start({
      name: 'openbao',
      binary: options.binary,
      logFile: join(options.logDir, 'openbao.log'),
      detached: options.detached,
      args: ['server', `-config=${configFile}`],
      env: { VAULT_DISABLE_USER_LOCKOUT: 'true' },
    });
    await waitFor(
      'OpenBao to listen',
      async () => {
        if (!proc.running) throw new Error(`OpenBao exited:\n${proc.tail()}`);
        await anonymous.health();
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    let init: InitRecord;
    if (!existsSync(initFile)) {
      const response = await anonymous.request<{ keys_base64: string[]; root_token: string }>('PUT', 'sys/init', {
        secret_shares: 1,
        secret_threshold: 1,
      });
      init = { unsealKey: response.keys_base64[0]!, rootToken: response.root_token };
      writeFileSync(initFile, JSON.stringify(init), { mode: 0o600 });
    } else {
      init = JSON.parse(readFileSync(initFile, 'utf8')) as InitRecord;
    }
    await anonymous.request('PUT', 'sys/unseal', { key: init.unsealKey });
    await waitFor(
      'OpenBao to unseal and elect itself active',
      async () => {
        const health = await anonymous.request<{ sealed: boolean; standby: boolean }>('GET', 'sys/health');
        return !health.sealed && !health.standby;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    return init;
  };

  const init = await launch();
  const server: OpenBaoServer = {
    url,
    port,
    caPem,
    rootToken: init.rootToken,
    dataDir,
    auditLog,
    flavor: 'vault',
    get process() {
      return proc;
    },
    client: () => new OpenBaoClient({ endpoint: url, caBundle: caPem, token: init.rootToken, timeoutMs: 10_000 }),
    stop: () => proc.stop(),
    restart: async () => {
      await proc.stop();
      await launch();
    },
  };
  await configureOnce(server);
  return server;
}

/** Transit and the file audit device; Kubernetes auth comes once the apiserver is up. */
async function configureOnce(server: OpenBaoServer): Promise<void> {
  const root = server.client();
  const mounts = await root.secretMounts();
  if (!mounts['transit/']) await root.enableSecretsEngine('transit', 'transit');
  const audits = await root.request<Record<string, unknown>>('GET', 'sys/audit');
  const devices = (audits.data as Record<string, unknown> | undefined) ?? audits;
  if (!devices['file/'])
    await root.request('PUT', 'sys/audit/file', { type: 'file', options: { file_path: server.auditLog } });
}

/**
 * Kubernetes auth at `mount`, pointed at a kube-apiserver, so that logins run a real TokenReview
 * with the reviewer token (a ServiceAccount bound to system:auth-delegator).
 */
export async function configureKubernetesAuth(
  server: OpenBaoServer,
  input: { mount: string; kubernetesHost: string; caPem: string; reviewerJwt: string; issuer?: string },
): Promise<void> {
  const root = server.client();
  const auths = await root.authMounts();
  if (!auths[`${input.mount}/`]) await root.enableAuth(input.mount, 'kubernetes');
  await root.request('POST', `auth/${input.mount}/config`, {
    kubernetes_host: input.kubernetesHost,
    kubernetes_ca_cert: input.caPem,
    token_reviewer_jwt: input.reviewerJwt,
    disable_local_ca_jwt: true,
    ...(input.issuer ? { issuer: input.issuer } : {}),
  });
}

export async function openBaoVersion(binary: string): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(binary, ['version'], { encoding: 'utf8' });
  return /v(\d+\.\d+\.\d+)/.exec(out)?.[0] ?? out.trim();
}
