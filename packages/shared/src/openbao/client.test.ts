import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenBaoClient } from './client.ts';
import { OpenBaoError } from './errors.ts';

// What our client puts on the wire: headers and paths. OpenBao namespaces cannot run on the
// Vault OSS server of the local platform, so this records requests on a loopback HTTP server;
// server behaviour itself is tested against the real server in e2e/tests/openbao.test.ts.
describe('OpenBaoClient request shape', () => {
  const seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.setHeader('Content-Type', 'application/json');
      if (req.url?.includes('/slow')) return; // never answers
      if (req.url?.startsWith('/v1/sys/health')) {
        res.statusCode = 473;
        res.end('{"initialized":true,"sealed":false,"version":"2.4.0"}');
      } else if (req.url?.includes('/html')) {
        res.statusCode = 502;
        res.end('<html>bad gateway</html>');
      } else if (req.url?.includes('/empty')) {
        res.statusCode = 204;
        res.end();
      } else if (req.url?.includes('/missing')) {
        res.statusCode = 404;
        res.end('{"errors":[]}');
      } else if (req.url?.includes('/denied')) {
        res.statusCode = 403;
        res.end('{"errors":["permission denied"]}');
      } else {
        res.end(
          '{"data":{"keys":{"1":1700000000},"latest_version":1,"name":"k","type":"aes256-gcm96","min_decryption_version":1,"min_encryption_version":0,"deletion_allowed":false,"exportable":false}}',
        );
      }
    });
  };
  const server = createServer(handler);
  let endpoint = '';
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => void server.close());

  it('sends the namespace and token headers per client, and addresses explicit mounts', async () => {
    const client = new OpenBaoClient({ endpoint, token: 'tok-1' }).withNamespace('acme/');
    await client.transit('transit-etcd').readKey('k');
    const last = seen.at(-1)!;
    expect(last.url).toBe('/v1/transit-etcd/keys/k');
    expect(last.headers['x-vault-namespace']).toBe('acme');
    expect(last.headers['x-vault-token']).toBe('tok-1');
  });

  it('omits the namespace header for the root namespace and the token for logins', async () => {
    const client = new OpenBaoClient({ endpoint, token: 'tok-2', namespace: 'root' });
    await client.loginKubernetes('k8s-host', 'tcp-a', 'jwt-value').catch(() => undefined);
    const last = seen.at(-1)!;
    expect(last.url).toBe('/v1/auth/k8s-host/login');
    expect(last.headers['x-vault-namespace']).toBeUndefined();
    expect(last.headers['x-vault-token']).toBeUndefined();
    expect(JSON.parse(last.body)).toEqual({ role: 'tcp-a', jwt: 'jwt-value' });
  });

  it('maps 404 reads to null and other errors to typed errors', async () => {
    const client = new OpenBaoClient({ endpoint, token: 't' });
    expect(await client.transit().readKey('missing')).toBeNull();
    const error = await client.request('POST', 'transit/keys/denied/rotate').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenBaoError);
    expect(error).toMatchObject({ status: 403, kind: 'denied', errors: ['permission denied'] });
  });

  it('reports an unreachable server as kind unavailable', async () => {
    const client = new OpenBaoClient({ endpoint: 'http://127.0.0.1:1', timeoutMs: 2000 });
    await expect(client.health()).rejects.toMatchObject({ status: 0, kind: 'unavailable' });
  });

  it('answers a health body whatever its status, and 204 as an empty object', async () => {
    const client = new OpenBaoClient({ endpoint, token: 't' });
    expect(await client.health()).toEqual({ initialized: true, sealed: false, version: '2.4.0' });
    expect(await client.request('DELETE', 'sys/policies/acl/empty')).toEqual({});
  });

  it('keeps a non-JSON error body out of errors but keeps the status', async () => {
    const error = await new OpenBaoClient({ endpoint, token: 't' }).request('GET', 'sys/html').catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, kind: 'server', errors: [], body: '<html>bad gateway</html>' });
  });

  it('gives up after timeoutMs with kind unavailable, and the token appears nowhere in the error', async () => {
    const started = Date.now();
    const error = await new OpenBaoClient({ endpoint, token: 'secret-token-value', timeoutMs: 300 })
      .request('GET', 'sys/slow')
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toMatchObject({ status: 0, kind: 'unavailable', errors: ['ETIMEDOUT'] });
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('secret-token-value');
  });

  it('reuses one connection for sequential calls (keep-alive)', async () => {
    const client = new OpenBaoClient({ endpoint, token: 't' });
    const ports = new Set<number>();
    server.on('request', (req) => ports.add(req.socket.remotePort!));
    for (let i = 0; i < 5; i++) await client.transit().readKey('k');
    server.removeAllListeners('request');
    server.on('request', handler);
    expect(ports.size).toBe(1);
  });

  it('refuses an endpoint that is not http or https', () => {
    expect(() => new OpenBaoClient({ endpoint: 'ftp://openbao:8200' })).toThrow(/use http:\/\/ or https:\/\//);
  });
});
