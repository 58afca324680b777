import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneUrl, podGet, TenantApiClient, TenantRequestError } from './tenant-client.ts';

// Real TLS servers on loopback; certificates from the openssl CLI.
const dir = mkdtempSync(join(tmpdir(), 'tenant-client-'));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const read = (f: string) => readFileSync(join(dir, f), 'utf8');

function issue(ca: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
  );
}

type Seen = { path?: string; authorization?: string; clientCn?: string };
const servers: (Server | HttpServer)[] = [];
function listen(server: Server | HttpServer): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

let port = 0;
let strangerPort = 0;
let slowPort = 0;
const seen: Seen[] = [];

beforeAll(async () => {
  for (const ca of ['ca', 'stranger-ca'])
    openssl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=${ca}`);
  issue('ca', 'server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  issue('ca', 'admin', 'extendedKeyUsage=clientAuth');
  issue(
    'stranger-ca',
    'stranger',
    'subjectAltName=IP:127.0.0.1,DNS:tenant-chosen-name.example\nextendedKeyUsage=serverAuth',
  );
  const tls = {
    key: read('server.key'),
    cert: read('server.crt'),
    ca: read('ca.crt'),
    requestCert: true,
    rejectUnauthorized: false,
  };
  port = await listen(
    createServer(tls, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({
        path: req.url,
        authorization: req.headers.authorization,
        clientCn: (req.socket as TLSSocket).authorized ? String(peer.subject?.CN) : undefined,
      });
      if (req.url === '/big') return res.end('x'.repeat(10_000));
      res.end('ok');
    }),
  );
  strangerPort = await listen(
    createServer({ key: read('stranger.key'), cert: read('stranger.crt') }, (_req, res) => res.end('ok')),
  );
  slowPort = await listen(
    createServer(tls, (_req, res) => {
      res.write('o');
      const drip = setInterval(() => res.write('k'), 100);
      res.on('close', () => clearInterval(drip));
    }),
  );
});
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('controlPlaneUrl', () => {
  it.each([
    ['127.0.0.1:6443', 'https://127.0.0.1:6443'],
    ['[fd00::1]:6443', 'https://[fd00::1]:6443'],
    ['web-cp.acme-shop.svc:6443', 'https://web-cp.acme-shop.svc:6443'],
  ])('%s -> %s', (endpoint, url) => expect(controlPlaneUrl(endpoint)?.origin).toBe(url));

  it.each([
    '',
    '127.0.0.1',
    'https://127.0.0.1:6443',
    'x:0',
    'x:70000',
    'user@host:1',
    'host:1/path',
    '[nothex]:1',
    'a b:1',
  ])('refuses %j', (endpoint) => {
    expect(controlPlaneUrl(endpoint)).toBeUndefined();
  });
});

describe('TenantApiClient', () => {
  const ca = () => read('ca.crt');
  const certAuth = () => ({
    kind: 'clientCertificate' as const,
    certPem: read('admin.crt'),
    keyPem: read('admin.key'),
  });

  it('presents the client certificate to the given server', async () => {
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${port}`), { caPem: ca(), auth: certAuth() });
    expect(await client.get('/readyz/kms-providers', { timeoutMs: 2000 })).toEqual({ status: 200, body: 'ok' });
    expect(seen.at(-1)).toEqual({ path: '/readyz/kms-providers', authorization: undefined, clientCn: 'admin' });
  });

  it('sends an inline token as a bearer token', async () => {
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${port}`), {
      caPem: ca(),
      auth: { kind: 'token', token: 'abc' },
    });
    await client.get('/readyz', { timeoutMs: 2000 });
    expect(seen.at(-1)).toMatchObject({ path: '/readyz', authorization: 'Bearer abc' });
  });

  it('refuses a server the CA did not sign, naming only a code (not the names in its certificate)', async () => {
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${strangerPort}`), { caPem: ca(), auth: certAuth() });
    const error = await client.get('/readyz', { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TenantRequestError);
    expect(error).toMatchObject({ kind: 'tls' });
    expect((error as Error).message).toMatch(/^TLS verification failed \([A-Z_]+\)$/);
    expect((error as Error).message).not.toContain('tenant-chosen-name');
  });

  it('cuts an answer off beyond maxBytes', async () => {
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${port}`), { caPem: ca(), auth: certAuth() });
    await expect(client.get('/big', { timeoutMs: 2000, maxBytes: 1000 })).rejects.toMatchObject({ kind: 'tooLarge' });
    expect((await client.get('/big', { timeoutMs: 2000, maxBytes: 20_000 })).body).toHaveLength(10_000);
  });

  it('gives up after the deadline even while bytes keep dripping in', async () => {
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${slowPort}`), { caPem: ca(), auth: certAuth() });
    const started = Date.now();
    await expect(client.get('/readyz', { timeoutMs: 500 })).rejects.toMatchObject({
      kind: 'timeout',
      message: 'timed out',
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('reports a refused connection as a connection failure', async () => {
    const closed = createHttpServer();
    const free = await listen(closed);
    await new Promise((r) => closed.close(r));
    const client = new TenantApiClient(new URL(`https://127.0.0.1:${free}`), { caPem: ca(), auth: certAuth() });
    await expect(client.get('/readyz', { timeoutMs: 2000 })).rejects.toMatchObject({
      kind: 'connect',
      message: 'connection failed (ECONNREFUSED)',
    });
  });

  it('only speaks https', () => {
    expect(() => new TenantApiClient(new URL('http://127.0.0.1:1'), { caPem: ca(), auth: certAuth() })).toThrow(
      /not https/,
    );
  });
});

describe('podGet', () => {
  it('reads a small plain-HTTP answer and refuses a large one', async () => {
    const p = await listen(
      createHttpServer((req, res) => res.end(req.url === '/key-version' ? '3\n' : 'y'.repeat(5000))),
    );
    expect(await podGet(new URL(`http://127.0.0.1:${p}/key-version`), { timeoutMs: 2000, maxBytes: 64 })).toEqual({
      status: 200,
      body: '3\n',
    });
    await expect(
      podGet(new URL(`http://127.0.0.1:${p}/other`), { timeoutMs: 2000, maxBytes: 64 }),
    ).rejects.toMatchObject({ kind: 'tooLarge' });
  });
});
