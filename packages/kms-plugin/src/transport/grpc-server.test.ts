import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  credentials,
  makeGenericClientConstructor,
  status as GrpcStatus,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deadlineFrom,
  encodeGrpcMessage,
  frameMessage,
  unaryServer,
  unframeMessage,
  type UnaryCall,
  type UnaryCallback,
  type UnaryHandler,
  type UnaryServer,
} from './grpc-server.ts';
import { loadKmsV2 } from './proto.ts';

describe('deadlineFrom (grpc-timeout)', () => {
  it.each([
    { header: '3S', ms: 3000 },
    { header: '250m', ms: 250 },
    { header: '2M', ms: 120_000 },
    { header: '1H', ms: 3_600_000 },
    { header: '5000u', ms: 5 },
    { header: '7000000n', ms: 7 },
    { header: undefined, ms: Infinity },
    { header: '3s', ms: Infinity },
    { header: '123456789S', ms: Infinity },
    { header: '-1S', ms: Infinity },
  ])('$header -> now + $ms ms', ({ header, ms }) => {
    expect(deadlineFrom(header, 1000)).toBe(1000 + ms);
  });
});

describe('encodeGrpcMessage', () => {
  it.each([
    { details: 'plain: text; ok', encoded: 'plain: text; ok' },
    { details: '100% sure', encoded: '100%25 sure' },
    { details: 'üñ', encoded: '%C3%BC%C3%B1' },
    { details: 'a\nb', encoded: 'a%0Ab' },
  ])('$details', ({ details, encoded }) => expect(encodeGrpcMessage(details)).toBe(encoded));
});

describe('frameMessage / unframeMessage', () => {
  it('round-trips a message', () => {
    const framed = frameMessage(Buffer.from('hello'));
    expect([...framed.subarray(0, 5)]).toEqual([0, 0, 0, 0, 5]);
    expect(unframeMessage(framed, 100)).toEqual({ message: Buffer.from('hello') });
  });
  it.each([
    { what: 'a short body', body: Buffer.from([0, 0, 0]), code: GrpcStatus.INTERNAL },
    { what: 'a compressed message', body: Buffer.from([1, 0, 0, 0, 1, 9]), code: GrpcStatus.UNIMPLEMENTED },
    { what: 'a message over the limit', body: frameMessage(Buffer.alloc(11)), code: GrpcStatus.RESOURCE_EXHAUSTED },
    { what: 'a truncated message', body: Buffer.from([0, 0, 0, 0, 4, 1, 2]), code: GrpcStatus.INTERNAL },
    {
      what: 'two messages',
      body: Buffer.concat([frameMessage(Buffer.alloc(1)), frameMessage(Buffer.alloc(1))]),
      code: GrpcStatus.INTERNAL,
    },
  ])('refuses $what', ({ body, code }) => {
    expect(unframeMessage(body, 10)).toMatchObject({ error: { code } });
  });
});

type Callable = Client &
  Record<string, (req: unknown, opts: unknown, cb: (e: ServiceError | null, r: unknown) => void) => void>;

describe('unaryServer with a grpc-js client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'grpc-server-'));
  const socket = join(dir, 's.sock');
  let server: UnaryServer;
  let client: Callable;
  const deadlines: number[] = [];
  let release: (() => void) | undefined;
  const handler =
    (answer: (request: Record<string, unknown>) => unknown): UnaryHandler =>
    (call: UnaryCall<never>, callback: UnaryCallback<never>) => {
      deadlines.push(call.getDeadline() as number);
      const result = answer(call.request);
      if (result instanceof Promise) void result.then((r) => callback(null, r as never));
      else if (result instanceof Error) callback({ code: GrpcStatus.INVALID_ARGUMENT, details: result.message });
      else callback(null, result as never);
    };
  const call = (method: string, request: unknown, deadline = Date.now() + 5000) =>
    new Promise<unknown>((resolve, reject) =>
      client[method]!(request, { deadline }, (e, r) => (e ? reject(e) : resolve(r))),
    );

  beforeAll(async () => {
    server = unaryServer(
      loadKmsV2().service,
      {
        Status: handler(() => ({ version: 'v2', healthz: 'ok', key_id: 'k1' })),
        Encrypt: handler((r) =>
          r.uid === 'slow'
            ? new Promise((resolve) => (release = () => resolve({ ciphertext: Buffer.from('late'), key_id: 'k1' })))
            : { ciphertext: Buffer.concat([Buffer.from('ct:'), r.plaintext as Buffer]), key_id: 'k1', annotations: {} },
        ),
        Decrypt: handler(() => new Error('ciphertext: is not 100% ours; üñí')),
      },
      { maxReceiveBytes: 1024 },
    );
    await server.listen(socket);
    const Ctor = makeGenericClientConstructor(loadKmsV2().service, 'KeyManagementService');
    client = new Ctor(`unix:${socket}`, credentials.createInsecure(), {
      'grpc.default_authority': 'localhost',
    }) as Callable;
  });
  afterAll(() => {
    client?.close();
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a call with the handler response and hands the caller deadline to it', async () => {
    const before = Date.now();
    expect(await call('Status', {})).toMatchObject({ version: 'v2', healthz: 'ok', key_id: 'k1' });
    expect(deadlines.at(-1)).toBeGreaterThan(before + 4000);
    expect(deadlines.at(-1)).toBeLessThan(before + 6000);
    const encrypted = (await call('Encrypt', { plaintext: Buffer.from('p'), uid: 'u' })) as { ciphertext: Buffer };
    expect(encrypted.ciphertext.toString()).toBe('ct:p');
  });

  it('a handler error reaches the caller as its code and text', async () => {
    await expect(call('Decrypt', { ciphertext: Buffer.from('x'), key_id: 'k1' })).rejects.toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT,
      details: 'ciphertext: is not 100% ours; üñí',
    });
  });

  it('a message over the limit is RESOURCE_EXHAUSTED, and the server keeps serving', async () => {
    await expect(call('Encrypt', { plaintext: Buffer.alloc(4096), uid: 'u' })).rejects.toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
    });
    expect(await call('Status', {})).toMatchObject({ healthz: 'ok' });
  });

  it('an unknown method is UNIMPLEMENTED', async () => {
    const Other = makeGenericClientConstructor(
      {
        Nope: {
          path: '/v2.KeyManagementService/Nope',
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: Buffer) => v,
          requestDeserialize: (v: Buffer) => v,
          responseSerialize: (v: Buffer) => v,
          responseDeserialize: (v: Buffer) => v,
        },
      },
      'Other',
    );
    const other = new Other(`unix:${socket}`, credentials.createInsecure()) as Callable;
    await expect(
      new Promise((resolve, reject) =>
        other.Nope!(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r))),
      ),
    ).rejects.toMatchObject({ code: GrpcStatus.UNIMPLEMENTED });
    other.close();
  });

  it('tryShutdown lets an in-flight call finish before it reports done', async () => {
    const inFlight = call('Encrypt', { plaintext: Buffer.from('p'), uid: 'slow' });
    await new Promise((r) => setTimeout(r, 100));
    let done = false;
    server.tryShutdown(() => (done = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    release!();
    expect(((await inFlight) as { ciphertext: Buffer }).ciphertext.toString()).toBe('late');
    client.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(done).toBe(true);
  });
});
