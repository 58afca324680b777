import { describe, expect, it } from 'vitest';
import { prefixRangeEnd, resourcePrefix, tenantEtcdPrefix } from './prefix.ts';
import { parseEtcdEndpoint } from './reader.ts';

describe('tenantEtcdPrefix', () => {
  const uid = '0b9f6f6e-2c4e-4a59-9d44-6f1f5c1b2a77';
  it.each([
    [
      'what Kamaji applied wins',
      { spec: { dataStoreSchema: 'from_spec' }, status: { storage: { setup: { schema: uid } } } },
      `/${uid}/`,
    ],
    [
      'spec until Kamaji reports the setup',
      { spec: { dataStoreSchema: 'ns_c_cp' }, status: { storage: { driver: 'etcd' } } },
      '/ns_c_cp/',
    ],
    ['slashes are trimmed', { spec: {}, status: { storage: { setup: { schema: '/ns_c-cp/' } } } }, '/ns_c-cp/'],
    ['nothing set yet', { spec: {}, status: {} }, null],
    [
      'empty and slash-only values are not a schema',
      { spec: { dataStoreSchema: '/' }, status: { storage: { setup: { schema: '' } } } },
      null,
    ],
    ['a non-string is not a schema', { spec: { dataStoreSchema: 7 } }, null],
    ['no object', null, null],
  ])('%s', (_name, tcp, expected) => expect(tenantEtcdPrefix(tcp)).toBe(expected));
});

describe('resourcePrefix', () => {
  it('joins', () => expect(resourcePrefix('/ns_c/', 'secrets')).toBe('/ns_c/secrets/'));
  it.each([
    ['ns_c/', 'secrets', /must start and end/],
    ['/ns_c', 'secrets', /must start and end/],
    ['/ns_c/', '../x', /not a plural resource/],
    ['/ns_c/', '', /not a plural resource/],
  ])('refuses %j %j', (prefix, resource, message) => expect(() => resourcePrefix(prefix, resource)).toThrow(message));
});

describe('prefixRangeEnd', () => {
  it.each([
    ['/a/', '/a0'],
    ['/ns_c-cp/secrets/', '/ns_c-cp/secrets0'],
  ])('%j -> %j', (prefix, end) => expect(prefixRangeEnd(Buffer.from(prefix)).toString('latin1')).toBe(end));
  it('carries over 0xff', () => expect(prefixRangeEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62])));
  it('all 0xff is every key', () => expect(prefixRangeEnd(Buffer.from([0xff, 0xff]))).toEqual(Buffer.from([0])));
});

describe('parseEtcdEndpoint', () => {
  it.each([
    [{ endpoint: 'https://10.0.0.1:2379' }, { target: '10.0.0.1:2379', tls: true }],
    [{ endpoint: 'http://127.0.0.1:2379/' }, { target: '127.0.0.1:2379', tls: false }],
    [{ endpoint: 'etcd.kamaji-system.svc:2379' }, { target: 'etcd.kamaji-system.svc:2379', tls: false }],
    [
      { endpoint: 'etcd:2379', caPem: 'x' },
      { target: 'etcd:2379', tls: true },
    ],
    [{ endpoint: 'HTTPS://[::1]:2379' }, { target: '[::1]:2379', tls: true }],
  ])('%j', (connection, expected) => expect(parseEtcdEndpoint(connection)).toEqual(expected));

  it.each([
    [{ endpoint: 'ftp://e:2379' }, /is not https:\/\/host:port/],
    [{ endpoint: 'https://e:2379/v3/kv' }, /is not https:\/\/host:port/],
    [{ endpoint: '' }, /is not https:\/\/host:port/],
    [{ endpoint: 'http://e:2379', caPem: 'x' }, /is http:\/\/ but TLS files were given/],
    [{ endpoint: 'https://e:2379', certPem: 'x' }, /go together/],
  ])('refuses %j', (connection, message) =>
    expect(() => parseEtcdEndpoint(connection)).toThrow(
      expect.objectContaining({ kind: 'config', message: expect.stringMatching(message) }),
    ),
  );
});
