// Kamaji's PKI for a TenantControlPlane: the CA, the apiserver's serving and kubelet-client
// certificates, the front-proxy CA and client, the ServiceAccount key pair, each in a Secret named
// like Kamaji's, and the admin kubeconfig Secret. Existing Secrets are reused, so a runner that
// restarts keeps tokens and kubeconfigs valid.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { at, RESOURCES, type KubeClient, type KubeObject } from '@kdc/shared';
import { createCA, issueCert } from '../pki.ts';
import {
  FIELD_MANAGER,
  NAME_LABEL,
  PKI_PARTS,
  PKI_SECRETS,
  pkiPaths,
  type PkiPart,
  type TenantControlPlane,
} from './tcp.ts';

export interface TcpPki {
  caPem: string;
  adminCertPem: string;
  adminKeyPem: string;
}

type SecretObject = KubeObject & { data?: Record<string, string> };

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

export function firstServiceIp(cidr: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) return undefined;
  const n = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const ip = (n + 1) >>> 0;
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

/** The apiserver's serving certificate names: kubeadm's, the TCP's Service, certSANs and the address. */
export function servingNames(tcp: TenantControlPlane): { dnsNames: string[]; ips: string[] } {
  const np = tcp.spec.networkProfile ?? {};
  const isIp = (x: string) => /^[\d.]+$/.test(x) || x.includes(':');
  const sans = [...(np.certSANs ?? []), ...(np.address ? [np.address] : [])];
  const serviceIp = firstServiceIp(np.serviceCidrs?.[0] ?? np.serviceCidr ?? '10.96.0.0/16');
  return {
    dnsNames: [
      'localhost',
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
      tcp.metadata.name,
      `${tcp.metadata.name}.${tcp.metadata.namespace}.svc`,
      ...sans.filter((x) => !isIp(x)),
    ],
    ips: ['127.0.0.1', ...(serviceIp ? [serviceIp] : []), ...sans.filter(isIp)],
  };
}

/** A Secret Kamaji owns for the TCP (the values in plain text; encoded here). */
export function tcpSecret(tcp: TenantControlPlane, name: string, data: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: tcp.metadata.namespace,
      labels: { [NAME_LABEL]: tcp.metadata.name, 'kamaji.clastix.io/managed-by': FIELD_MANAGER },
    },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

/** The `admin.conf` of the `<tcp>-admin-kubeconfig` Secret. */
export function adminKubeconfig(tcp: TenantControlPlane, server: string, pki: TcpPki): string {
  const name = tcp.metadata.name;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(pki.caPem) } }],
    users: [
      {
        name: 'kubernetes-admin',
        user: { 'client-certificate-data': b64(pki.adminCertPem), 'client-key-data': b64(pki.adminKeyPem) },
      },
    ],
    contexts: [{ name: `kubernetes-admin@${name}`, context: { cluster: name, user: 'kubernetes-admin' } }],
    'current-context': `kubernetes-admin@${name}`,
  });
}

/** A fresh PKI made under `dir` (openssl), and the certificate and key of each PKI Secret. */
export function generatePki(
  tcp: TenantControlPlane,
  dir: string,
): { pki: TcpPki; parts: Record<PkiPart, [string, string]> } {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = createCA(dir, 'kubernetes');
  const serving = issueCert(ca, dir, {
    name: 'apiserver',
    commonName: 'kube-apiserver',
    ...servingNames(tcp),
    usage: 'server',
  });
  const kubeletClient = issueCert(ca, dir, {
    name: 'apiserver-kubelet-client',
    commonName: 'kube-apiserver-kubelet-client',
    organization: 'kubeadm:cluster-admins',
    usage: 'client',
  });
  const frontProxyCa = createCA(dir, 'front-proxy');
  const frontProxyClient = issueCert(frontProxyCa, dir, {
    name: 'front-proxy-client',
    commonName: 'front-proxy-client',
    usage: 'client',
  });
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const admin = issueCert(ca, dir, {
    name: 'admin',
    commonName: 'kubernetes-admin',
    organization: 'system:masters',
    usage: 'client',
  });
  return {
    pki: { caPem: ca.certPem, adminCertPem: admin.certPem, adminKeyPem: admin.keyPem },
    parts: {
      ca: [ca.certPem, ca.keyPem],
      apiServer: [serving.certPem, serving.keyPem],
      apiServerKubeletClient: [kubeletClient.certPem, kubeletClient.keyPem],
      frontProxyCA: [frontProxyCa.certPem, frontProxyCa.keyPem],
      frontProxyClient: [frontProxyClient.certPem, frontProxyClient.keyPem],
      sa: [
        sa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ],
    },
  };
}

/**
 * The TCP's PKI Secrets (reused when they all exist and the admin client key is still in `dir`,
 * generated otherwise) and its admin kubeconfig, as a file at `kubeconfigFile` and as the Secret.
 */
export async function ensurePki(input: {
  kube: KubeClient;
  tcp: TenantControlPlane;
  /** The TCP's working dir: the admin client's key is kept here, never in a Secret. */
  dir: string;
  /** Already known from an earlier reconcile. */
  known?: TcpPki;
  server: string;
  kubeconfigFile: string;
  log: (message: string, fields?: Record<string, unknown>) => void;
}): Promise<TcpPki> {
  const { kube, tcp } = input;
  const ns = tcp.metadata.namespace;
  const names = PKI_SECRETS(tcp.metadata.name);
  const secret = (name: string) => kube.getOrNull<SecretObject>(at(RESOURCES.secret, ns, name));
  let pki = input.known;
  if (!pki) {
    const existing = await Promise.all(PKI_PARTS.map((k) => secret(names[k])));
    const admin = await secret(names.adminKubeconfig);
    const adminPemFile = join(input.dir, 'admin-client.json');
    let adminPem: { cert: string; key: string } | undefined;
    try {
      adminPem = JSON.parse(readFileSync(adminPemFile, 'utf8')) as { cert: string; key: string };
    } catch {
      adminPem = undefined;
    }
    const ca = existing[0]?.data?.['ca.crt'];
    if (existing.every(Boolean) && ca && admin && adminPem) {
      pki = { caPem: Buffer.from(ca, 'base64').toString(), adminCertPem: adminPem.cert, adminKeyPem: adminPem.key };
    } else {
      const started = Date.now();
      const generated = generatePki(tcp, join(input.dir, 'pki'));
      for (const k of PKI_PARTS) {
        const [cert, key] = generated.parts[k];
        const [certName, keyName] = pkiPaths[k];
        await kube.apply(
          at(RESOURCES.secret, ns, names[k]),
          tcpSecret(tcp, names[k], { [certName]: cert, [keyName]: key }),
          FIELD_MANAGER,
        );
      }
      input.log('generated PKI', { tcp: `${ns}/${tcp.metadata.name}`, ms: Date.now() - started });
      pki = generated.pki;
      writeFileSync(adminPemFile, JSON.stringify({ cert: pki.adminCertPem, key: pki.adminKeyPem }), { mode: 0o600 });
    }
  }
  const kubeconfig = adminKubeconfig(tcp, input.server, pki);
  writeFileSync(input.kubeconfigFile, kubeconfig, { mode: 0o600 });
  const live = await secret(names.adminKubeconfig);
  if (live?.data?.['admin.conf'] !== b64(kubeconfig)) {
    await kube.apply(
      at(RESOURCES.secret, ns, names.adminKubeconfig),
      tcpSecret(tcp, names.adminKubeconfig, { 'admin.conf': kubeconfig }),
      FIELD_MANAGER,
    );
  }
  return pki;
}
