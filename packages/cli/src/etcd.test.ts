import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdSettings, prefixRangeEnd, scanPrefix } from './etcd.ts';

describe('prefixRangeEnd', () => {
  it.each([
    ['/a/', '/a0'],
    ['/ns_c-cp/', '/ns_c-cp0'],
  ])('%j -> %j', (prefix, end) => expect(prefixRangeEnd(Buffer.from(prefix)).toString('latin1')).toBe(end));
  it('carries over 0xff', () => {
    expect(prefixRangeEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
  });
});

describe('etcdSettings', () => {
  it.each([
    [{}, {}, null],
    [{ 'etcd-endpoint': 'http://127.0.0.1:2379/' }, {}, { endpoint: 'http://127.0.0.1:2379' }],
    [{}, { ETCD_ENDPOINT: 'http://e:2379' }, { endpoint: 'http://e:2379' }],
  ])('%j %j', (flags, env, expected) => expect(etcdSettings(flags, env)).toEqual(expected));

  it.each([
    [{ 'etcd-ca-file': '/x' }, /need --etcd-endpoint/],
    [{ 'etcd-endpoint': 'e:2379' }, /must be http|not a URL/],
    [{ 'etcd-endpoint': 'ftp://e' }, /must be http/],
    [{ 'etcd-endpoint': 'https://e', 'etcd-cert-file': '/c' }, /go together/],
    [{ 'etcd-endpoint': 'https://e', 'etcd-ca-file': '/does/not/exist' }, /cannot read --etcd-ca-file/],
  ])('refuses %j', (flags, message) => expect(() => etcdSettings(flags, {})).toThrow(message));
});

describe('scanPrefix', () => {
  // A fake JSON gateway over 5 keys that checks the paging contract.
  const keys = ['/p/a', '/p/b', '/p/c', '/p/d', '/p/e'];
  const requests: Record<string, unknown>[] = [];
  let server: Server;
  let endpoint = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const r = JSON.parse(body) as { key: string; range_end: string; limit: number; revision?: string };
        requests.push(r);
        const start = Buffer.from(r.key, 'base64').toString('latin1');
        const end = Buffer.from(r.range_end, 'base64').toString('latin1');
        const inRange = keys.filter((k) => k >= start && k < end);
        const page = inRange.slice(0, r.limit);
        res.end(JSON.stringify({ header: { revision: '77' }, kvs: page.map((k) => ({ key: Buffer.from(k).toString('base64'), value: Buffer.from(`v${k}`).toString('base64') })), more: inRange.length > page.length, count: String(inRange.length) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('pages through the prefix at the first revision', async () => {
    const seen: string[] = [];
    const result = await scanPrefix({ endpoint }, '/p/', (rows) => seen.push(...rows.map((r) => `${r.key.toString()}=${r.value.toString()}`)), { pageSize: 2 });
    expect(seen).toEqual(keys.map((k) => `${k}=v${k}`));
    expect(result).toEqual({ rows: 5, revision: '77' });
    expect(requests.map((r) => r.revision)).toEqual([undefined, '77', '77']);
    expect(requests.every((r) => r.keys_only === false)).toBe(true);
  });

  it('names the endpoint when it is not etcd', async () => {
    await expect(scanPrefix({ endpoint: 'http://127.0.0.1:1' }, '/p/', () => undefined, { timeoutMs: 2000 })).rejects.toThrow();
  });
});
