import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { httpsRequest } from './https.ts';
import { createCA, issueCert, serviceAccountKeys, type CertificateAuthority } from './pki.ts';
import { freePort } from './ports.ts';
import { ManagedProcess } from './process.ts';
import { waitFor } from './wait.ts';

export interface KubeApiserver {
  name: string;
  url: string;
  port: number;
  ca: CertificateAuthority;
  /** Admin (system:masters) kubeconfig file. */
  kubeconfig: string;
  adminCert: { cert: string; key: string };
  serviceAccountIssuer: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface KubeApiserverOptions {
  binary: string;
  dir: string;
  logDir: string;
  etcdEndpoint: string;
  /** e.g. /registry (management) or /tenant-a (a tenant on a shared etcd). */
  etcdPrefix?: string;
  name?: string;
  extraArgs?: string[];
  detached?: boolean;
  port?: number;
  /** Reuse the PKI of an earlier start (restarts keep tokens and kubeconfigs valid). */
  pkiDir?: string;
  readyTimeoutMs?: number;
}

export function writeKubeconfig(
  file: string,
  input: { name: string; server: string; caPem: string; certPem: string; keyPem: string; user?: string },
): void {
  const user = input.user ?? 'admin';
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: input.name,
          cluster: { server: input.server, 'certificate-authority-data': Buffer.from(input.caPem).toString('base64') },
        },
      ],
      users: [
        {
          name: user,
          user: {
            'client-certificate-data': Buffer.from(input.certPem).toString('base64'),
            'client-key-data': Buffer.from(input.keyPem).toString('base64'),
          },
        },
      ],
      contexts: [{ name: input.name, context: { cluster: input.name, user } }],
      'current-context': input.name,
    }),
    { mode: 0o600 },
  );
}

/**
 * A real kube-apiserver on loopback with its own CA, serving cert, service-account keys and an
 * admin client cert. The management cluster and every tenant use this same function.
 */
export async function startKubeApiserver(options: KubeApiserverOptions): Promise<KubeApiserver> {
  const name = options.name ?? 'kube-apiserver';
  const pkiDir = options.pkiDir ?? join(options.dir, `${name}-pki`);
  mkdirSync(pkiDir, { recursive: true, mode: 0o700 });
  const port = options.port ?? (await freePort());
  const ca = createCA(pkiDir, name);
  const serving = issueCert(ca, pkiDir, {
    name: 'serving',
    commonName: name,
    dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
    ips: ['127.0.0.1'],
    usage: 'server',
  });
  const admin = issueCert(ca, pkiDir, {
    name: 'admin',
    commonName: 'kdc-admin',
    organization: 'system:masters',
    usage: 'client',
  });
  const sa = serviceAccountKeys(pkiDir, name);
  const url = `https://127.0.0.1:${port}`;
  const serviceAccountIssuer = `https://${name}.kdc.local`;
  const process = ManagedProcess.start({
    name,
    binary: options.binary,
    logFile: join(options.logDir, `${name}.log`),
    detached: options.detached,
    args: [
      `--etcd-servers=${options.etcdEndpoint}`,
      `--etcd-prefix=${options.etcdPrefix ?? '/registry'}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The "kubernetes" Service endpoints would point at loopback, which the endpoints API refuses.
      '--endpoint-reconciler-type=none',
      `--tls-cert-file=${serving.certFile}`,
      `--tls-private-key-file=${serving.keyFile}`,
      `--client-ca-file=${ca.certFile}`,
      `--service-account-key-file=${sa.publicKeyFile}`,
      `--service-account-signing-key-file=${sa.privateKeyFile}`,
      `--service-account-issuer=${serviceAccountIssuer}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--profiling=false',
      '--enable-priority-and-fairness=false',
      '--v=1',
      ...(options.extraArgs ?? []),
    ],
  });
  const server: KubeApiserver = {
    name,
    url,
    port,
    ca,
    kubeconfig: join(pkiDir, 'admin.kubeconfig'),
    adminCert: { cert: admin.certPem, key: admin.keyPem },
    serviceAccountIssuer,
    process,
    stop: () => process.stop(),
  };
  writeKubeconfig(server.kubeconfig, {
    name,
    server: url,
    caPem: ca.certPem,
    certPem: admin.certPem,
    keyPem: admin.keyPem,
  });
  await waitForApiserverReady(server, options.readyTimeoutMs ?? 120_000);
  return server;
}

export async function waitForApiserverReady(server: KubeApiserver, timeoutMs: number): Promise<void> {
  await waitFor(
    `${server.name} /readyz`,
    async () => {
      if (!server.process.running) throw new Error(`${server.name} exited:\n${server.process.tail()}`);
      const res = await httpsRequest(`${server.url}/readyz`, {
        ca: server.ca.certPem,
        cert: server.adminCert.cert,
        key: server.adminCert.key,
      });
      return res.status === 200;
    },
    { timeoutMs, intervalMs: 250 },
  );
}
