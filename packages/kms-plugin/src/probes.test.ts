import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveProbes } from './probes.ts';

describe('serveProbes', () => {
  const state = {
    healthz: () => 'ok',
    current: { keyId: 'kdc1.v3.secret-looking-id', version: 3 } as { keyId: string; version: number } | undefined,
  };
  let server: Awaited<ReturnType<typeof serveProbes>>;
  let base = '';
  beforeAll(async () => {
    server = await serveProbes(state, { host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());
  const get = async (path: string, method = 'GET') => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, body: await res.text() };
  };

  it('answers health, readiness, the key version and the published key_id', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/key-version')).toEqual({ status: 200, body: '3\n' });
    expect(await get('/key-id')).toEqual({ status: 200, body: 'kdc1.v3.secret-looking-id\n' });
  });

  it('follows the key state', async () => {
    state.healthz = () => 'openbao_unavailable';
    state.current = undefined;
    expect(await get('/readyz')).toEqual({ status: 503, body: 'not ready' });
    expect(await get('/key-version')).toMatchObject({ status: 503 });
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok' });
  });

  it('serves nothing else: no metrics, no other method', async () => {
    for (const path of ['/metrics', '/', '/keys', '/healthz/../metrics'])
      expect((await get(path)).status, path).toBe(404);
    expect((await get('/healthz', 'POST')).status).toBe(405);
  });
});
