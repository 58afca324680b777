// Reads key ranges of etcd through its gRPC KV API (KV.Range), the way etcdctl and the
// kube-apiserver do. Not the JSON gateway: on a Kamaji-style etcd (client-certificate auth,
// server certificate with serverAuth usage only) the gateway's own loopback dial presents the
// server certificate as a client certificate and fails, so every /v3/kv/range answers 503.
//
// Every read of a scan happens at one revision, so the scan sees one consistent store even while
// the apiserver writes. Keys are listed first (keys-only pages), then values are fetched in
// bounded batches of exactly those keys: memory holds one page of keys and one batch of values.
import { fileURLToPath } from 'node:url';
import type * as GrpcModule from '@grpc/grpc-js';
import type { ChannelCredentials, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { EtcdReadError, rangeFailure } from './errors.ts';
import { prefixRangeEnd } from './prefix.ts';

export interface EtcdConnection {
  /** https://host:port, http://host:port, or host:port (TLS when any PEM is given). One member. */
  endpoint: string;
  /** PEM CA that signed etcd's server certificate. */
  caPem?: string;
  /** PEM client certificate and key, for etcd's --client-cert-auth (both or neither). */
  certPem?: string;
  keyPem?: string;
}

export interface EtcdReaderOptions {
  /** Deadline of each gRPC call, ms (default 30 s). */
  callTimeoutMs?: number;
  /** Cancels the call in flight and fails every later one with kind 'aborted'. */
  signal?: AbortSignal;
  /** Largest answer accepted, bytes (default 16 MiB); a batch of values above it is split. */
  maxMessageBytes?: number;
}

export interface EtcdRowsOptions {
  /** Keys listed per keys-only call (default 1000). */
  keysPerPage?: number;
  /** Values fetched per call, at most (default 250); halved while an answer is too large. */
  valuesPerBatch?: number;
}

export interface EtcdRow {
  key: Buffer;
  value: Buffer;
}

export interface EtcdKvReader {
  readonly endpoint: string;
  /** How many keys are under `prefix` at `revision` (0: the newest, whose number is returned). */
  count(prefix: string | Uint8Array, revision?: number): Promise<{ count: number; revision: number }>;
  /** Every row under `prefix` at `revision` (> 0), in key order, a batch at a time. */
  rows(prefix: string | Uint8Array, revision: number, options?: EtcdRowsOptions): AsyncGenerator<EtcdRow[]>;
  /** Closes the channel; idempotent. */
  close(): void;
}

export const ETCD_KV_PROTO = fileURLToPath(new URL('./proto/etcd-kv.proto', import.meta.url));

interface RangeRequest {
  key: Uint8Array;
  range_end?: Uint8Array;
  limit?: number;
  revision?: number;
  keys_only?: boolean;
  count_only?: boolean;
}

interface RangeResponse {
  header?: { revision?: number } | null;
  kvs: { key: Buffer; value: Buffer }[];
  more: boolean;
  count: number;
}

interface KvClient {
  Range(
    request: RangeRequest,
    options: { deadline: Date },
    callback: (error: ServiceError | null, response?: RangeResponse) => void,
  ): ClientUnaryCall;
  close(): void;
}

type KvConstructor = new (target: string, creds: ChannelCredentials, options: Record<string, unknown>) => KvClient;
type Grpc = typeof GrpcModule;

let loaded: Promise<{ grpc: Grpc; KV: KvConstructor }> | undefined;
/** gRPC is loaded on the first read, so programs that import this module for its types stay small. */
function kvClientClass(): Promise<{ grpc: Grpc; KV: KvConstructor }> {
  loaded ??= (async () => {
    const [grpc, protoLoader] = await Promise.all([import('@grpc/grpc-js'), import('@grpc/proto-loader')]);
    const definition = protoLoader.loadSync(ETCD_KV_PROTO, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as { etcdserverpb: { KV: KvConstructor } };
    return { grpc, KV: pkg.etcdserverpb.KV };
  })();
  return loaded;
}

/** host:port and whether to use TLS, or a 'config' error saying what to write instead. */
export function parseEtcdEndpoint(connection: EtcdConnection): { target: string; tls: boolean } {
  const match = /^(?:([a-z]+):\/\/)?([^/\s]+?)\/?$/i.exec(connection.endpoint.trim());
  const scheme = match?.[1]?.toLowerCase();
  if (!match || (scheme !== undefined && scheme !== 'http' && scheme !== 'https')) {
    throw new EtcdReadError(
      'config',
      `etcd endpoint "${connection.endpoint}" is not https://host:port, http://host:port or host:port`,
    );
  }
  if (Boolean(connection.certPem) !== Boolean(connection.keyPem)) {
    throw new EtcdReadError(
      'config',
      `etcd ${connection.endpoint}: the client certificate and key go together: give both or neither`,
    );
  }
  const pems = Boolean(connection.caPem || connection.certPem);
  if (scheme === 'http' && pems)
    throw new EtcdReadError(
      'config',
      `etcd endpoint "${connection.endpoint}" is http:// but TLS files were given: write https://`,
    );
  return { target: match[2]!, tls: scheme === 'https' || (scheme === undefined && pems) };
}

const ZERO = Buffer.from([0]);
const toBytes = (prefix: string | Uint8Array) =>
  typeof prefix === 'string' ? Buffer.from(prefix) : Buffer.from(prefix);

/** A reader on one etcd member. Connects on the first call. */
export function openEtcdKvReader(connection: EtcdConnection, options: EtcdReaderOptions = {}): EtcdKvReader {
  const { target, tls } = parseEtcdEndpoint(connection);
  const endpoint = connection.endpoint;
  const callTimeoutMs = options.callTimeoutMs ?? 30_000;
  const maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const signal = options.signal;
  let client: KvClient | undefined;
  let closed = false;

  async function connect(): Promise<KvClient> {
    if (client) return client;
    const { grpc, KV } = await kvClientClass();
    if (closed) throw new EtcdReadError('aborted', `etcd ${endpoint}: reader closed`);
    const creds = tls
      ? grpc.credentials.createSsl(
          connection.caPem ? Buffer.from(connection.caPem) : null,
          connection.keyPem ? Buffer.from(connection.keyPem) : null,
          connection.certPem ? Buffer.from(connection.certPem) : null,
        )
      : grpc.credentials.createInsecure();
    client ??= new KV(target, creds, { 'grpc.max_receive_message_length': maxMessageBytes });
    return client;
  }

  async function range(request: RangeRequest, what: string): Promise<RangeResponse> {
    if (signal?.aborted) throw new EtcdReadError('aborted', `etcd ${endpoint}: ${what}: cancelled`);
    if (closed) throw new EtcdReadError('aborted', `etcd ${endpoint}: ${what}: reader closed`);
    const kv = await connect();
    return new Promise<RangeResponse>((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = kv.Range(request, { deadline: new Date(Date.now() + callTimeoutMs) }, (error, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (error || !response)
          reject(rangeFailure(endpoint, what, error ?? new Error('empty answer'), signal?.aborted === true));
        else resolve(response);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async function count(prefix: string | Uint8Array, revision = 0): Promise<{ count: number; revision: number }> {
    const key = toBytes(prefix);
    const response = await range(
      { key, range_end: prefixRangeEnd(key), revision, count_only: true },
      `counting keys under ${key.toString('utf8')}`,
    );
    const at = Number(response.header?.revision ?? 0);
    if (!(at > 0)) throw new EtcdReadError('inconsistent', `etcd ${endpoint}: a Range answer carries no revision`);
    return { count: Number(response.count), revision: revision > 0 ? revision : at };
  }

  async function* rows(
    prefix: string | Uint8Array,
    revision: number,
    rowOptions: EtcdRowsOptions = {},
  ): AsyncGenerator<EtcdRow[]> {
    if (!(revision > 0))
      throw new EtcdReadError('config', `etcd ${endpoint}: rows() needs the revision to read at (from count())`);
    const keysPerPage = Math.max(1, rowOptions.keysPerPage ?? 1000);
    const maxBatch = Math.max(1, rowOptions.valuesPerBatch ?? 250);
    const start = toBytes(prefix);
    const end = prefixRangeEnd(start);
    const label = start.toString('utf8');
    let from = start;
    let batch = maxBatch;
    for (;;) {
      const page = await range(
        { key: from, range_end: end, limit: keysPerPage, revision, keys_only: true },
        `listing keys under ${label}`,
      );
      const keys = page.kvs.map((kv) => kv.key);
      for (let i = 0; i < keys.length;) {
        const n = Math.min(batch, keys.length - i);
        let answer: RangeResponse;
        try {
          // [first, last + \0) at the same revision holds exactly these n keys.
          answer = await range(
            { key: keys[i]!, range_end: Buffer.concat([keys[i + n - 1]!, ZERO]), limit: n, revision },
            `reading ${n} values under ${label}`,
          );
        } catch (error) {
          if (error instanceof EtcdReadError && error.kind === 'too-large' && n > 1) {
            batch = Math.max(1, n >> 1);
            continue;
          }
          throw error;
        }
        if (answer.kvs.length !== n || answer.kvs.some((kv, j) => !kv.key.equals(keys[i + j]!))) {
          throw new EtcdReadError(
            'inconsistent',
            `etcd ${endpoint}: values of ${n} keys under ${label} at revision ${revision} came back as ${answer.kvs.length} other rows`,
          );
        }
        yield answer.kvs.map((kv) => ({ key: kv.key, value: kv.value }));
        i += n;
        batch = Math.min(maxBatch, batch * 2);
      }
      if (!page.more || keys.length === 0) return;
      from = Buffer.concat([keys.at(-1)!, ZERO]);
    }
  }

  return {
    endpoint,
    count,
    rows,
    close: () => {
      if (closed) return;
      closed = true;
      client?.close();
    },
  };
}
