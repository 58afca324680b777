// Plants raw rows in an etcd through its gRPC KV API (Put, DeleteRange, Compact), over mutual TLS
// when given PEMs: the JSON gateway cannot be used on a Kamaji-style etcd (it answers 503 there),
// and the product's reader (@kdc/shared/etcd) is read-only on purpose.
import {
  credentials,
  makeGenericClientConstructor,
  type Client,
  type ServiceError,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { parseEtcdEndpoint, type EtcdConnection } from '@kdc/shared/etcd';

// Field numbers of go.etcd.io/etcd/api/v3 etcdserverpb/rpc.proto (v3.6).
const root = protobuf.Root.fromJSON({
  nested: {
    etcdserverpb: {
      nested: {
        ResponseHeader: { fields: { revision: { type: 'int64', id: 3 } } },
        PutRequest: { fields: { key: { type: 'bytes', id: 1 }, value: { type: 'bytes', id: 2 } } },
        PutResponse: { fields: { header: { type: 'ResponseHeader', id: 1 } } },
        DeleteRangeRequest: { fields: { key: { type: 'bytes', id: 1 }, range_end: { type: 'bytes', id: 2 } } },
        DeleteRangeResponse: {
          fields: { header: { type: 'ResponseHeader', id: 1 }, deleted: { type: 'int64', id: 2 } },
        },
        CompactionRequest: { fields: { revision: { type: 'int64', id: 1 }, physical: { type: 'bool', id: 2 } } },
        CompactionResponse: { fields: { header: { type: 'ResponseHeader', id: 1 } } },
      },
    },
  },
});

function method(name: string, request: string, response: string) {
  const req = root.lookupType(`etcdserverpb.${request}`);
  const res = root.lookupType(`etcdserverpb.${response}`);
  return {
    path: `/etcdserverpb.KV/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: object) => Buffer.from(req.encode(req.fromObject(m)).finish()),
    requestDeserialize: (b: Buffer) => req.toObject(req.decode(b)),
    responseSerialize: (m: object) => Buffer.from(res.encode(res.fromObject(m)).finish()),
    responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), { longs: Number }),
  };
}

const SERVICE = {
  Put: method('Put', 'PutRequest', 'PutResponse'),
  DeleteRange: method('DeleteRange', 'DeleteRangeRequest', 'DeleteRangeResponse'),
  Compact: method('Compact', 'CompactionRequest', 'CompactionResponse'),
} as unknown as ServiceDefinition;

export interface EtcdWriter {
  /** Returns the revision of the write. */
  put(key: string, value: Buffer | string): Promise<number>;
  /** Writes every row, `concurrency` calls in flight. */
  putMany(rows: Iterable<{ key: string; value: Buffer | string }>, concurrency?: number): Promise<void>;
  deletePrefix(prefix: string): Promise<number>;
  deleteKey(key: string): Promise<number>;
  compact(revision: number): Promise<void>;
  close(): void;
}

type Unary = (
  request: object,
  options: { deadline: number },
  callback: (error: ServiceError | null, response: Record<string, unknown>) => void,
) => void;

export function etcdWriter(connection: EtcdConnection): EtcdWriter {
  const { target, tls } = parseEtcdEndpoint(connection);
  const creds = tls
    ? credentials.createSsl(
        connection.caPem ? Buffer.from(connection.caPem) : null,
        connection.keyPem ? Buffer.from(connection.keyPem) : null,
        connection.certPem ? Buffer.from(connection.certPem) : null,
      )
    : credentials.createInsecure();
  const Ctor = makeGenericClientConstructor(SERVICE, 'KV');
  const client = new Ctor(target, creds, {}) as unknown as Client & Record<'Put' | 'DeleteRange' | 'Compact', Unary>;
  const call = (name: 'Put' | 'DeleteRange' | 'Compact', request: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) =>
      client[name](request, { deadline: Date.now() + 30_000 }, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
  const end = (prefix: Buffer) => {
    const e = Buffer.from(prefix);
    e[e.length - 1]! += 1;
    return e;
  };
  const put = async (key: string, value: Buffer | string) =>
    Number(
      ((await call('Put', { key: Buffer.from(key), value: Buffer.from(value) })).header as { revision: number })
        .revision,
    );
  return {
    put,
    putMany: async (rows, concurrency = 32) => {
      const it = rows[Symbol.iterator]();
      const worker = async () => {
        for (let next = it.next(); !next.done; next = it.next()) await put(next.value.key, next.value.value);
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    },
    deletePrefix: async (prefix) =>
      Number(
        (await call('DeleteRange', { key: Buffer.from(prefix), range_end: end(Buffer.from(prefix)) })).deleted ?? 0,
      ),
    deleteKey: async (key) => Number((await call('DeleteRange', { key: Buffer.from(key) })).deleted ?? 0),
    compact: async (revision) => void (await call('Compact', { revision, physical: true })),
    close: () => client.close(),
  };
}
