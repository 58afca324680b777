import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { KubeClient, resourcePath } from './kube.ts';
import { loopbackKubeClient } from './loopback.fixture.ts';
import { splitKey } from './informer.ts';

describe('resourcePath', () => {
  it.each([
    [{ group: '', version: 'v1', plural: 'secrets', namespace: 'ns', name: 's' }, '/api/v1/namespaces/ns/secrets/s'],
    [
      { group: 'k8s.kube-dc.com', version: 'v1alpha1', plural: 'kdcclusters' },
      '/apis/k8s.kube-dc.com/v1alpha1/kdcclusters',
    ],
    [
      { group: '', version: 'v1', plural: 'serviceaccounts', namespace: 'ns', name: 'sa', subresource: 'token' },
      '/api/v1/namespaces/ns/serviceaccounts/sa/token',
    ],
  ])('%j -> %s', (ref, path) => expect(resourcePath(ref)).toBe(path));
});

describe('splitKey', () => {
  it('splits namespaced and cluster keys', () => {
    expect(splitKey('ns/name')).toEqual({ namespace: 'ns', name: 'name' });
    expect(splitKey('name')).toEqual({ name: 'name' });
  });
});

describe('KubeClient.fromDefault', () => {
  it('refuses to start without KUBECONFIG, ~/.kube/config or a pod ServiceAccount, naming what to set', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'));
    expect(() => KubeClient.fromDefault({}, home)).toThrow(
      /no Kubernetes credentials: set KUBECONFIG.*or run in a pod/,
    );
  });

  it('takes the kubeconfig KUBECONFIG names (the positive control)', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'));
    expect(() => KubeClient.fromDefault({ KUBECONFIG: '/nonexistent' }, home)).not.toThrow(/no Kubernetes credentials/);
  });
});

describe('KubeClient answers of 503 from a replica shutting down', () => {
  const serve = async (answers: { status: number; retryAfter?: string }[]) => {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const answer = answers[seen.length] ?? { status: 200 };
      seen.push(`${req.method} ${answer.status}`);
      res
        .writeHead(answer.status, {
          'Content-Type': 'application/json',
          ...(answer.retryAfter ? { 'Retry-After': answer.retryAfter } : {}),
        })
        .end(JSON.stringify(answer.status === 200 ? { kind: 'Namespace' } : { message: 'apiserver is shutting down' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { client: loopbackKubeClient(server), seen, close: () => new Promise((r) => server.close(r)) };
  };
  const ns = { group: '', version: 'v1', plural: 'namespaces', name: 'x' };

  it('a GET told to retry after 0-1 s goes again (as client-go), a write does not, nor a 503 without Retry-After', async () => {
    const shutting = { status: 503, retryAfter: '0' };
    const get = await serve([shutting, shutting, { status: 200 }]);
    await expect(get.client.get(ns)).resolves.toMatchObject({ kind: 'Namespace' });
    expect(get.seen).toEqual(['GET 503', 'GET 503', 'GET 200']);
    await get.close();
    const write = await serve([shutting, { status: 200 }]);
    await expect(write.client.patch(ns, { metadata: { labels: { a: 'b' } } })).rejects.toMatchObject({ status: 503 });
    expect(write.seen).toEqual(['PATCH 503']);
    await write.close();
    const plain = await serve([{ status: 503 }, { status: 200 }]);
    await expect(plain.client.get(ns)).rejects.toMatchObject({ status: 503 });
    expect(plain.seen).toEqual(['GET 503']);
    await plain.close();
  });

  it('gives up after three, with the answer itself', async () => {
    const shutting = { status: 503, retryAfter: '0' };
    const always = await serve([shutting, shutting, shutting, shutting, shutting]);
    await expect(always.client.get(ns)).rejects.toThrow(/503 apiserver is shutting down/);
    expect(always.seen).toHaveLength(4);
    await always.close();
  });
});

describe('KubeClient.onWrite', () => {
  it('hears every write once answered, refused ones too, and no read', async () => {
    const server = createServer((req, res) => {
      const refused = req.url!.endsWith('/refused');
      res
        .writeHead(refused ? 409 : 200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify(refused ? { message: 'conflict' } : { kind: 'ServiceAccount' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = loopbackKubeClient(server);
    const heard: string[] = [];
    client.onWrite = (ref) =>
      heard.push(`${ref.plural}/${ref.name ?? ''}${ref.subresource ? `/${ref.subresource}` : ''}`);
    const sa = (name?: string) => ({ group: '', version: 'v1', plural: 'serviceaccounts', namespace: 'ns', name });
    try {
      await client.get(sa('a'));
      await client.list(sa());
      expect(heard).toEqual([]); // the positive control: reads are not writes
      await client.create(sa(), { metadata: { name: 'a' } });
      await client.replace(sa('a'), { metadata: { name: 'a' } });
      await client.patch(sa('a'), { metadata: { labels: {} } });
      await client.delete(sa('a'));
      await client.post({ ...sa('a'), subresource: 'token' }, {});
      await expect(client.replace(sa('refused'), { metadata: { name: 'refused' } })).rejects.toThrow(/conflict/);
      expect(heard).toEqual([
        'serviceaccounts/',
        'serviceaccounts/a',
        'serviceaccounts/a',
        'serviceaccounts/a',
        'serviceaccounts/a/token',
        'serviceaccounts/refused',
      ]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('KubeClient answers of 429', () => {
  const serve = async (answers: number[], retryAfter?: string) => {
    const seen: number[] = [];
    const server = createServer((req, res) => {
      const status = answers[seen.length] ?? 200;
      seen.push(status);
      res
        .writeHead(status, {
          'Content-Type': 'application/json',
          ...(retryAfter && status === 429 ? { 'Retry-After': retryAfter } : {}),
        })
        .end(
          JSON.stringify(
            status === 200
              ? { kind: 'Namespace' }
              : { reason: 'TooManyRequests', message: 'storage is (re)initializing' },
          ),
        );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { client: loopbackKubeClient(server), seen, close: () => new Promise((r) => server.close(r)) };
  };

  it('are sent again when the caller asks for retries (the CLI), up to that many', async () => {
    const { client, seen, close } = await serve([429, 429, 200]);
    client.tooManyRequestsRetries = 5;
    await expect(client.get({ group: '', version: 'v1', plural: 'namespaces', name: 'x' })).resolves.toMatchObject({
      kind: 'Namespace',
    });
    expect(seen).toEqual([429, 429, 200]);
    await close();
  });

  it('wait the Retry-After the apiserver sends instead of the backoff (0 s here: the backoff would be 750 ms)', async () => {
    const { client, seen, close } = await serve([429, 429, 200], '0');
    client.tooManyRequestsRetries = 5;
    const started = performance.now();
    await client.get({ group: '', version: 'v1', plural: 'namespaces', name: 'x' });
    expect(seen).toEqual([429, 429, 200]);
    expect(performance.now() - started).toBeLessThan(500);
    await close();
  });

  it('fail at once by default (controllers retry through their queues), and after the last retry', async () => {
    const once = await serve([429, 200]);
    await expect(once.client.get({ group: '', version: 'v1', plural: 'namespaces', name: 'x' })).rejects.toMatchObject({
      status: 429,
    });
    expect(once.seen).toEqual([429]);
    await once.close();
    const twice = await serve([429, 429, 429]);
    twice.client.tooManyRequestsRetries = 1;
    await expect(twice.client.get({ group: '', version: 'v1', plural: 'namespaces', name: 'x' })).rejects.toThrow(
      /429 storage is \(re\)initializing/,
    );
    expect(twice.seen).toEqual([429, 429]);
    await twice.close();
  });
});

describe('KubeClient connections', () => {
  // A real TLS server on loopback; certificates from the openssl CLI.
  const dir = mkdtempSync(join(tmpdir(), 'kube-tls-'));
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const issue = (name: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      ...['-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-out', `${name}.crt`, '-days', '1'],
      '-CAcreateserial',
      ...['-extfile', `${name}.ext`],
    );
  };

  const read = (f: string) => readFileSync(join(dir, f));
  beforeAll(() => {
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ca');
    issue('server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
    for (const user of ['first', 'second']) issue(user, 'extendedKeyUsage=clientAuth');
  });
  const clientOf = (port: number, user: string) => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caFile: join(dir, 'ca.crt'), skipTLSVerify: false }],
      users: [{ name: 'u', certFile: join(dir, `${user}.crt`), keyFile: join(dir, `${user}.key`) }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return new KubeClient(kc);
  };

  /** Runs `test` against a TLS server on loopback answering with `handler`; counts its connections. */
  const withServer = async (
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    test: (port: number, connections: () => number) => Promise<void>,
  ) => {
    let connections = 0;
    const server = createHttpsServer(
      { key: read('server.key'), cert: read('server.crt'), ca: read('ca.crt'), requestCert: true },
      handler,
    );
    server.on('secureConnection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await test((server.address() as AddressInfo).port, () => connections);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  };
  const ns = { group: '', version: 'v1', plural: 'namespaces', name: 'x' };

  it('sends a request again when its kept-alive connection turns out closed (an apiserver replica went away)', async () => {
    const served: string[] = [];
    await withServer(
      (req, res) => {
        const socket = req.socket as TLSSocket & { requests?: number };
        socket.requests = (socket.requests ?? 0) + 1;
        // The second request on any connection finds it gone, before any answer.
        if (socket.requests > 1) return void socket.destroy();
        served.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Namespace"}');
      },
      async (port, connections) => {
        const client = clientOf(port, 'first');
        for (let i = 0; i < 3; i++) await client.get(ns);
        await client.patch(ns, { metadata: { labels: { a: 'b' } } });
        expect({ connections: connections(), served }).toEqual({
          connections: 4,
          served: [
            'GET /api/v1/namespaces/x',
            'GET /api/v1/namespaces/x',
            'GET /api/v1/namespaces/x',
            'PATCH /api/v1/namespaces/x',
          ],
        });
      },
    );
  });

  it('a replica gone with several kept-alive connections: the request goes again on a new one, not the next dead one', async () => {
    let gone = false;
    const connectionsAtGone = new Set<unknown>();
    let served = 0;
    await withServer(
      (req, res) => {
        // Connections that were open when the replica went away fail at their next request.
        if (gone && connectionsAtGone.has(req.socket)) return void req.socket.destroy();
        if (!gone) connectionsAtGone.add(req.socket);
        served++;
        // Held a moment, so that four requests at once open four kept-alive connections.
        setTimeout(() => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Namespace"}'), 50);
      },
      async (port, connections) => {
        const client = clientOf(port, 'first');
        await Promise.all(Array.from({ length: 4 }, () => client.get(ns)));
        expect(connections()).toBe(4);
        gone = true;
        await expect(client.get(ns)).resolves.toMatchObject({ kind: 'Namespace' });
        await expect(client.patch(ns, { metadata: { labels: { a: 'b' } } })).resolves.toMatchObject({
          kind: 'Namespace',
        });
        expect(served).toBe(6);
      },
    );
  });

  it('sends a GET again when a fresh connection is reset before any answer, and never a write', async () => {
    // Every connection is reset at its first request until `resets` runs out (a replica
    // shutting down behind a Service): GETs are idempotent, a POST may have landed.
    let resets = 2;
    const served: string[] = [];
    await withServer(
      (req, res) => {
        if (resets-- > 0) return void req.socket.destroy();
        served.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'Content-Type': 'application/json', Connection: 'close' }).end('{"kind":"Namespace"}');
      },
      async (port) => {
        const client = clientOf(port, 'first');
        await client.get(ns);
        expect(served).toEqual(['GET /api/v1/namespaces/x']);
        resets = 1;
        await expect(client.patch(ns, { metadata: { labels: { a: 'b' } } })).rejects.toMatchObject({
          code: 'ECONNRESET',
        });
        // Past the retries, the GET fails with the reset itself.
        resets = 10;
        await expect(client.get(ns)).rejects.toMatchObject({ code: 'ECONNRESET' });
        expect(resets).toBe(6);
        expect(served).toEqual(['GET /api/v1/namespaces/x']);
      },
    );
  });

  it('reuses one TLS connection across requests, and opens a new one when the client certificate file changes', async () => {
    const clients: string[] = [];
    const use = (user: string) => {
      copyFileSync(join(dir, `${user}.crt`), join(dir, 'client.crt'));
      copyFileSync(join(dir, `${user}.key`), join(dir, 'client.key'));
    };
    use('first');
    await withServer(
      (req, res) => {
        clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Namespace"}');
      },
      async (port, connections) => {
        const client = clientOf(port, 'client');
        for (let i = 0; i < 3; i++) await client.get(ns);
        expect({ connections: connections(), clients }).toEqual({
          connections: 1,
          clients: ['first', 'first', 'first'],
        });
        use('second');
        await client.get(ns);
        expect({ connections: connections(), clients: clients.slice(3) }).toEqual({
          connections: 2,
          clients: ['second'],
        });
      },
    );
  });
});
