import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenBaoClient } from './client.ts';
import { OpenBaoError } from './errors.ts';

// What our client puts on the wire: headers and paths. OpenBao namespaces cannot run on the
// Vault OSS server of the local platform, so this records requests on a loopback HTTP server;
// server behaviour itself is tested against the real server in e2e/tests/openbao.test.ts.
describe('OpenBaoClient request shape', () => {
  const seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      res.setHeader('Content-Type', 'application/json');
      if (req.url?.includes('/missing')) {
        res.statusCode = 404;
        res.end('{"errors":[]}');
      } else if (req.url?.includes('/denied')) {
        res.statusCode = 403;
        res.end('{"errors":["permission denied"]}');
      } else {
        res.end('{"data":{"keys":{"1":1700000000},"latest_version":1,"name":"k","type":"aes256-gcm96","min_decryption_version":1,"min_encryption_version":0,"deletion_allowed":false,"exportable":false}}');
      }
    });
  });
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
});
