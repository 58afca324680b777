// The coverage scanner against a Kamaji-style DataStore: etcd with --client-cert-auth whose server
// certificate carries the serverAuth extended key usage only. etcd's JSON gateway cannot serve
// such an etcd (its loopback dial presents the server certificate as a client certificate); the
// scanner reads through etcd's gRPC KV API at one revision.
import { randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMS_STORED_PREFIX } from '@kdc/shared';
import { coverageStatus, openEtcdKvReader, scanCoverage, type EtcdConnection, type EtcdRow } from '@kdc/shared/etcd';
import { keyIdOf as ID, kmsRow as ours, plaintextRow, startTlsEtcd, type TlsEtcd } from '../src/etcd-tls.ts';
import { createCA } from '../src/pki.ts';
import { freePort } from '../src/ports.ts';
import { startStallProxy } from '../src/stall-proxy.ts';
import { platform, unique } from './helpers.ts';

const PLAIN = plaintextRow();

function useTlsEtcd(name: string): TlsEtcd {
  const t = {} as TlsEtcd;
  beforeAll(
    async () => Object.assign(t, await startTlsEtcd(platform(), join(platform().dir, unique(name)), unique(name))),
    90_000,
  );
  afterAll(async () => t.stop?.());
  return t;
}

/** The request the CLI sent before the scanner existed: POST /v3/kv/range to the JSON gateway. */
function gateway(t: TlsEtcd, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${t.etcd.endpoint}${path}`,
      {
        method: payload ? 'POST' : 'GET',
        ca: t.ca.certPem,
        cert: t.client.certPem,
        key: t.client.keyPem,
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function collect(rows: AsyncGenerator<EtcdRow[]>): Promise<{ keys: string[]; batches: number[] }> {
  const out = { keys: [] as string[], batches: [] as number[] };
  for await (const batch of rows) {
    out.batches.push(batch.length);
    out.keys.push(...batch.map((r) => r.key.toString()));
  }
  return out;
}

describe('coverage scan of a Kamaji-style DataStore (mutual TLS, serverAuth-only server certificate)', () => {
  const t = useTlsEtcd('cov-etcd');
  const K2a = ID('kdc2', 2, 'A');
  const K2b = ID('kdc2', 2, 'B');
  // Kamaji >= 26.7.4 names the prefix after the TCP's UID.
  const uid = randomUUID();
  const P = `/${uid}/`;

  beforeAll(async () => {
    const rows: [string, Buffer][] = [
      ...['a1', 'a2', 'a3'].map((n): [string, Buffer] => [`secrets/default/${n}`, ours(K2a)]),
      ...['b1', 'b2'].map((n): [string, Buffer] => [`secrets/kube-system/${n}`, ours(K2b)]),
      ['secrets/default/s-older-version', ours(ID('kdc2', 1, 'A'))],
      ['secrets/default/s-older-form', ours(ID('kdc1', 1, 'A'))],
      ['secrets/default/s-same-version-other-key', ours(ID('kdc2', 2, 'Z'))],
      ['secrets/default/p1', PLAIN],
      ['secrets/default/p2', Buffer.from('{"kind":"Secret","apiVersion":"v1"}')],
      ['secrets/default/f-foreign-key-id', ours('arn:aws:kms:eu-west-1:111122223333:key/1')],
      ['secrets/default/f-other-provider', ours(K2a, { provider: 'someone-else' })],
      ['secrets/default/f-aescbc', Buffer.from('k8s:enc:aescbc:v1:key1:0123456789abcdef')],
      ['secrets/default/u-broken', Buffer.concat([Buffer.from(KMS_STORED_PREFIX), Buffer.from([0x12, 0x50, 0x01])])],
      ['configmaps/default/c1', Buffer.from('{"kind":"ConfigMap"}')],
      ['configmaps/default/c2', ours(K2a)],
      // Under the tenant prefix but not a configured resource, and a neighbour whose names start like ours.
      ['pods/default/x', PLAIN],
      ['secretsx/default/y', ours(ID('kdc2', 1, 'A'))],
    ];
    await t.writer.putMany(rows.map(([k, value]) => ({ key: `${P}${k}`, value })));
    await t.writer.put(`/${uid}x/secrets/default/z`, ours(ID('kdc2', 1, 'A')));
  });

  it("the JSON gateway the CLI used answers 503 there; etcd's gRPC API answers", async () => {
    // Positive control: the same client certificate is accepted (/health is served without the gateway).
    expect(JSON.parse((await gateway(t, '/health')).body)).toMatchObject({ health: 'true' });
    const old = await gateway(t, '/v3/kv/range', {
      key: Buffer.from(P).toString('base64'),
      range_end: Buffer.from(`/${uid}0`).toString('base64'),
      limit: 500,
    });
    // The gateway's own loopback gRPC client fails the TLS handshake; etcd reports that as code 14
    // (Unavailable) with either "connection error" or the broken pipe it saw first.
    expect(old.status).toBe(503);
    expect(JSON.parse(old.body)).toMatchObject({ code: 14 });
    expect(old.body).toMatch(/connection error|broken pipe|connection reset/);

    const reader = openEtcdKvReader(t.connection);
    try {
      expect(await reader.count(P)).toEqual({ count: 18, revision: expect.any(Number) });
    } finally {
      reader.close();
    }
  });

  it('counts every kind of row exactly, by full key_id, for the configured resources only', async () => {
    const progress: number[] = [];
    const scan = await scanCoverage({
      connection: t.connection,
      prefix: P,
      resources: ['secrets', 'configmaps'],
      currentKeyIds: [K2a, K2b],
      onProgress: (x) => void progress.push(x.scanned),
    });
    expect(scan).toMatchObject({
      total: 16,
      current: 6,
      stale: 3,
      plaintext: 3,
      foreign: 3,
      unreadable: 1,
      prefixKeys: 18,
      byKeyId: {
        [K2a]: 4,
        [K2b]: 2,
        [ID('kdc2', 1, 'A')]: 1,
        [ID('kdc1', 1, 'A')]: 1,
        [ID('kdc2', 2, 'Z')]: 1,
        'arn:aws:kms:eu-west-1:111122223333:key/1': 1,
      },
      otherProviders: { 'kms:v2:someone-else': 1, 'aescbc:v1:key1': 1 },
      byResource: {
        secrets: { total: 14, current: 5, stale: 3, plaintext: 2, foreign: 3, unreadable: 1 },
        configmaps: { total: 2, current: 1, stale: 0, plaintext: 1, foreign: 0, unreadable: 0 },
      },
      unreadableExamples: [
        expect.stringMatching(new RegExp(`^${P}secrets/default/u-broken: EncryptedObject does not decode`)),
      ],
      resources: ['secrets', 'configmaps'],
    });
    expect(Object.keys(scan.byKeyId)).toHaveLength(6);
    expect(progress.at(-1)).toBe(16);
    // The status view: a foreign or unreadable row is not current, so it keeps the cluster from "complete".
    expect(coverageStatus(scan, scan.scannedAt)).toEqual({
      total: 16,
      current: 6,
      stale: 7,
      plaintext: 3,
      scannedAt: scan.scannedAt,
    });
    // Values never leave the scanner: the made-up ciphertext (48 x "Z") is nowhere in the result.
    expect(JSON.stringify(scan)).not.toContain('Z'.repeat(48));

    const secretsOnly = await scanCoverage({
      connection: t.connection,
      prefix: P,
      resources: ['secrets'],
      currentKeyIds: [K2a],
    });
    expect(secretsOnly).toMatchObject({ total: 14, current: 3, stale: 5, plaintext: 2, foreign: 3, unreadable: 1 });
  });

  it('reads at one revision: a row written or deleted mid-scan does not change what the scan sees', async () => {
    const reader = openEtcdKvReader(t.connection);
    try {
      const { count, revision } = await reader.count(`${P}secrets/`);
      const rows = reader.rows(`${P}secrets/`, revision, { keysPerPage: 4, valuesPerBatch: 2 });
      const first = await rows.next();
      expect(first.value).toHaveLength(2);
      await t.writer.put(`${P}secrets/zz/new`, PLAIN);
      await t.writer.deleteKey(`${P}secrets/kube-system/b2`);
      const rest = await collect(rows);
      const keys = [...(first.value as EtcdRow[]).map((r) => r.key.toString()), ...rest.keys];
      expect(keys).toHaveLength(count);
      expect(keys).toContain(`${P}secrets/kube-system/b2`);
      expect(keys).not.toContain(`${P}secrets/zz/new`);
      expect(keys).toEqual([...keys].sort());
      expect(Math.max(...rest.batches)).toBeLessThanOrEqual(2);
      // Positive control: a scan at a new revision sees both changes.
      const now = await collect(reader.rows(`${P}secrets/`, (await reader.count(`${P}secrets/`)).revision));
      expect(now.keys).toContain(`${P}secrets/zz/new`);
      expect(now.keys).not.toContain(`${P}secrets/kube-system/b2`);
    } finally {
      reader.close();
      await t.writer.deleteKey(`${P}secrets/zz/new`);
      await t.writer.put(`${P}secrets/kube-system/b2`, ours(K2b));
    }
  });

  it('splits a batch of values that is too large for one answer; a single value beyond it is a clear error', async () => {
    const Q = `/${randomUUID()}/`;
    await t.writer.putMany(
      Array.from({ length: 12 }, (_, i) => ({
        key: `${Q}secrets/default/big-${String(i).padStart(2, '0')}`,
        value: ours(K2a, { pad: 20_000 }),
      })),
    );
    const batches: number[] = [];
    const scan = await scanCoverage({
      connection: t.connection,
      prefix: Q,
      resources: ['secrets'],
      currentKeyIds: [K2a],
      paging: { valuesPerBatch: 10, maxMessageBytes: 64 * 1024 },
      onProgress: (x) => void batches.push(x.scanned),
    });
    expect(scan).toMatchObject({ total: 12, current: 12 });
    // 10 x 20 kB does not fit in 64 KiB: the scan went on with smaller batches.
    expect(batches.length).toBeGreaterThan(2);

    await t.writer.put(`${Q}secrets/default/huge`, Buffer.alloc(100_000, 0x41));
    await expect(
      scanCoverage({
        connection: t.connection,
        prefix: Q,
        resources: ['secrets'],
        currentKeyIds: [K2a],
        paging: { maxMessageBytes: 64 * 1024 },
      }),
    ).rejects.toMatchObject({
      name: 'EtcdReadError',
      kind: 'too-large',
      message: expect.stringContaining(`etcd ${t.etcd.endpoint}: reading 1 values under ${Q}secrets/`),
    });
  });

  it('restarts at a newer revision when etcd compacts the one in use, or says so', async () => {
    const Q = `/${randomUUID()}/`;
    await t.writer.putMany(
      Array.from({ length: 6 }, (_, i) => ({ key: `${Q}secrets/default/s${i}`, value: ours(K2a) })),
    );
    const compactOnce = async () => t.writer.compact(await t.writer.put(`${Q}secrets/default/late`, ours(K2a)));
    let compacted = false;
    const revisions = new Set<number>();
    const scan = await scanCoverage({
      connection: t.connection,
      prefix: Q,
      resources: ['secrets'],
      currentKeyIds: [K2a],
      paging: { keysPerPage: 2, valuesPerBatch: 1 },
      onProgress: async (x) => {
        revisions.add(x.revision);
        if (!compacted) await compactOnce().then(() => (compacted = true));
      },
    });
    expect(revisions.size).toBe(2);
    expect(scan).toMatchObject({ total: 7, current: 7, revision: Math.max(...revisions) });

    await t.writer.deleteKey(`${Q}secrets/default/late`);
    compacted = false;
    const noRetry = scanCoverage({
      connection: t.connection,
      prefix: Q,
      resources: ['secrets'],
      currentKeyIds: [],
      compactionRetries: 0,
      paging: { keysPerPage: 2 },
      onProgress: async () => {
        if (!compacted) await compactOnce().then(() => (compacted = true));
      },
    });
    await expect(noRetry).rejects.toMatchObject({
      kind: 'compacted',
      message: expect.stringContaining('compacted while it ran'),
    });
  });

  it('fails with a kind and a message naming what to check, never hanging', async () => {
    const scan = (connection: EtcdConnection, extra: Partial<Parameters<typeof scanCoverage>[0]> = {}) =>
      scanCoverage({
        connection,
        prefix: P,
        resources: ['secrets'],
        currentKeyIds: [],
        callTimeoutMs: 5_000,
        ...extra,
      });
    const endpoint = t.etcd.endpoint;
    // No client certificate: etcd's --client-cert-auth refuses the handshake.
    await expect(scan({ endpoint, caPem: t.ca.certPem })).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/certificate required.*client certificate and key match/),
    });
    // A CA that did not sign etcd's certificate.
    const other = createCA(join(platform().dir, unique('other-ca')), 'other');
    await expect(scan({ ...t.connection, caPem: other.certPem })).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining(`etcd ${endpoint}: counting keys under ${P}`),
    });
    // Nothing listens there.
    await expect(scan({ ...t.connection, endpoint: `https://127.0.0.1:${await freePort()}` })).rejects.toMatchObject({
      kind: 'unavailable',
    });
    // Settings that cannot work are refused before any connection.
    await expect(scan({ ...t.connection, endpoint: endpoint.replace('https:', 'http:') })).rejects.toMatchObject({
      kind: 'config',
      message: expect.stringContaining('write https://'),
    });
    // A path that accepts the connection and then says nothing: the per-call deadline ends it.
    const proxy = await startStallProxy({ host: '127.0.0.1', port: Number(new URL(endpoint).port) });
    try {
      proxy.stall();
      const started = Date.now();
      await expect(
        scan({ ...t.connection, endpoint: `https://127.0.0.1:${proxy.port}` }, { callTimeoutMs: 1_500 }),
      ).rejects.toMatchObject({ kind: 'deadline' });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await proxy.close();
    }
    // The caller's AbortSignal ends a scan mid-way.
    const abort = new AbortController();
    await expect(
      scan(t.connection, {
        paging: { keysPerPage: 2, valuesPerBatch: 1 },
        signal: abort.signal,
        onProgress: () => abort.abort(),
      }),
    ).rejects.toMatchObject({ kind: 'aborted' });
    // Positive control: the same settings scan fine.
    await expect(scan(t.connection)).resolves.toMatchObject({ total: 14 });
  });
});
