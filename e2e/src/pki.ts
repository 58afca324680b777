import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Certificates for the local servers, made with the openssl CLI (node:crypto cannot issue
// X.509). Everything is short-lived test material in the platform's temp dir.

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export type CertificateAuthority = IssuedCert;

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// ECDSA P-256 everywhere: every component accepts it, and an RSA key costs seconds on a small
// loaded machine (0.4 s for a whole tenant PKI with EC).
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

export function createCA(dir: string, name: string): CertificateAuthority {
  mkdirSync(dir, { recursive: true });
  const keyFile = join(dir, `${name}-ca.key`);
  const certFile = join(dir, `${name}-ca.crt`);
  openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '30',
      '-subj',
      `/CN=${name}-ca`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ],
    dir,
  );
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

export function issueCert(
  ca: CertificateAuthority,
  dir: string,
  input: {
    name: string;
    commonName: string;
    organization?: string;
    dnsNames?: string[];
    ips?: string[];
    usage: 'server' | 'client';
  },
): IssuedCert {
  const keyFile = join(dir, `${input.name}.key`);
  const csrFile = join(dir, `${input.name}.csr`);
  const certFile = join(dir, `${input.name}.crt`);
  const extFile = join(dir, `${input.name}.ext`);
  const subject = `/CN=${input.commonName}${input.organization ? `/O=${input.organization}` : ''}`;
  const sans = [...(input.dnsNames ?? []).map((d) => `DNS:${d}`), ...(input.ips ?? []).map((ip) => `IP:${ip}`)];
  writeFileSync(
    extFile,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${input.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
    ].join('\n'),
  );
  openssl(['req', ...EC_KEY, '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', subject], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-CAcreateserial',
      '-out',
      certFile,
      '-days',
      '30',
      '-extfile',
      extFile,
    ],
    dir,
  );
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** RSA key pair for service-account token signing. */
export function serviceAccountKeys(dir: string, name: string): { publicKeyFile: string; privateKeyFile: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyFile = join(dir, `${name}-sa.pub`);
  const privateKeyFile = join(dir, `${name}-sa.key`);
  writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { publicKeyFile, privateKeyFile };
}
