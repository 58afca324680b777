import http2 from 'node:http2';
import { status as GrpcStatus, type ServiceDefinition } from '@grpc/grpc-js';

// The plugin's gRPC server: unary calls only (all the KMS v2 service has), on node:http2 directly.
// grpc-js's server costs about 0.3 ms of CPU per call on top of node:http2 (interceptor chain,
// metadata objects, call tracking): measured with kms-load (grpc-go, like kube-apiserver) against
// an empty Status handler, grpc-js p50 0.49 ms / p99 3.7 ms vs node:http2 0.18 / 1.3 and grpc-go
// 0.16 / 0.8 (docs/performance.md). The wire format is gRPC's: a 5-byte prefix (compressed flag,
// big-endian length) before each protobuf message, the status in trailers, and a trailers-only
// response for a failure. Compression is not supported (kube-apiserver does not compress).

/** What a handler sees of a call: the decoded request and the caller's deadline. */
export interface UnaryCall<Req> {
  request: Req;
  /** Epoch ms as a number (Infinity when the caller set none). */
  getDeadline(): Date | number;
}
export interface CallError {
  code: GrpcStatus;
  details: string;
}
export type UnaryCallback<Res> = (error: CallError | null, response?: Res) => void;
export type UnaryHandler = (call: UnaryCall<never>, callback: UnaryCallback<never>) => void;

export interface UnaryServer {
  /** Listens on a Unix socket path. */
  listen(socket: string): Promise<void>;
  /** Stops taking connections and lets the open calls finish (GOAWAY); `done` once all sessions closed. */
  tryShutdown(done: () => void): void;
  /** Closes every session at once. */
  forceShutdown(): void;
}

const UNITS_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** The grpc-timeout header ("3S", "250m", ...) as an epoch-ms deadline; Infinity when absent or malformed. */
export function deadlineFrom(header: string | undefined, now: number): number {
  const match = header ? /^(\d{1,8})([HMSmun])$/.exec(header) : null;
  return match ? now + Number(match[1]) * UNITS_MS[match[2]!]! : Infinity;
}

/** One length-prefixed, uncompressed gRPC message. */
export function frameMessage(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

/** The single message of a unary request body, or the status to refuse it with. */
export function unframeMessage(body: Buffer, maxBytes: number): { message: Buffer } | { error: CallError } {
  if (body.length < 5)
    return { error: { code: GrpcStatus.INTERNAL, details: 'the request has no complete gRPC message' } };
  if (body[0] !== 0)
    return { error: { code: GrpcStatus.UNIMPLEMENTED, details: 'compressed messages are not supported' } };
  const length = body.readUInt32BE(1);
  if (length > maxBytes)
    return {
      error: {
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        details: `Received message larger than max (${length} vs. ${maxBytes})`,
      },
    };
  if (body.length !== 5 + length)
    return { error: { code: GrpcStatus.INTERNAL, details: 'the request is not exactly one gRPC message' } };
  return { message: body.subarray(5) };
}

/** grpc-message as gRPC over HTTP/2 wants it: UTF-8, bytes outside printable ASCII and '%' percent-encoded. */
export function encodeGrpcMessage(details: string): string {
  let out = '';
  for (const byte of Buffer.from(details, 'utf8'))
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

export function unaryServer(
  service: ServiceDefinition,
  handlers: Record<string, UnaryHandler>,
  options: { maxReceiveBytes: number },
): UnaryServer {
  const methods = new Map(
    Object.entries(service).map(([name, method]) => {
      const handler = handlers[name];
      if (!handler) throw new Error(`no handler for ${name}`);
      return [method.path, { method, handler }] as const;
    }),
  );
  // As grpc-js's Server: no session memory cap (Node refuses new streams with ENHANCE_YOUR_CALM
  // once a session holds 10 MB, which a burst of queued calls can reach; the plugin bounds its
  // own queue) and no cap on the header block it sends.
  const server = http2.createServer({
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
  });

  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined); // a caller that gave up resets its stream; nothing to answer
    const fail = (error: CallError) => {
      if (stream.destroyed || stream.headersSent) return;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc+proto',
          'grpc-status': String(error.code),
          'grpc-message': encodeGrpcMessage(error.details),
        },
        { endStream: true },
      );
    };
    const contentType = String(headers['content-type'] ?? '');
    if (headers[':method'] !== 'POST' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = String(headers[':path'] ?? '');
    const entry = methods.get(path);
    if (!entry) {
      stream.resume();
      fail({ code: GrpcStatus.UNIMPLEMENTED, details: `The server does not implement the method ${path}` });
      return;
    }
    const deadline = deadlineFrom(headers['grpc-timeout'] as string | undefined, Date.now());
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > 5 + options.maxReceiveBytes) {
        // Refused before it is all read or parsed.
        refused = true;
        chunks.length = 0;
        fail({
          code: GrpcStatus.RESOURCE_EXHAUSTED,
          details: `Received message larger than max (${size - 5} vs. ${options.maxReceiveBytes})`,
        });
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      if (refused) return;
      const unframed = unframeMessage(
        chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size),
        options.maxReceiveBytes,
      );
      if ('error' in unframed) return fail(unframed.error);
      let request: never;
      try {
        request = entry.method.requestDeserialize(unframed.message) as never;
      } catch {
        return fail({ code: GrpcStatus.INTERNAL, details: 'Error deserializing request' });
      }
      entry.handler({ request, getDeadline: () => deadline }, (error, response) => {
        if (error) return fail(error);
        if (stream.destroyed || stream.headersSent) return;
        let body: Buffer;
        try {
          body = frameMessage(entry.method.responseSerialize(response));
        } catch {
          return fail({ code: GrpcStatus.INTERNAL, details: 'Error serializing response' });
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(body);
      });
    });
  });

  return {
    listen: (socket) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(socket, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    tryShutdown: (done) => {
      server.close(() => done());
      for (const session of sessions) session.close();
    },
    forceShutdown: () => {
      for (const session of sessions) session.destroy();
      server.close();
    },
  };
}
