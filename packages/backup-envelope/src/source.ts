// Where a snapshot's plaintext comes from: etcd's Maintenance.Snapshot gRPC stream (the job),
// or an existing snapshot file (operators, the benchmark). Both are pulled on demand, so the
// encryption and the upload set the pace (HTTP/2 flow control pushes back on etcd).
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type * as GrpcModule from '@grpc/grpc-js';
import type { ChannelCredentials, Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { decodeSnapshotResponse, type SnapshotResponse } from './etcd/snapshot-response.ts';
import { BackupError } from './errors.ts';
import { garbageCollector } from './gc.ts';
import type { TrailerListener } from './format/hasher.ts';

export interface SourceInfo {
  /** What is being read, for logs and errors. */
  description: string;
  storageVersion?: string;
  revision?: number;
  databaseSize?: number;
}

export interface SnapshotSource {
  chunks: AsyncIterable<Buffer>;
  info: SourceInfo;
  /** Stops reading (after a failure elsewhere); idempotent. */
  close(): void;
}

/** A source is opened with the hasher, so it can announce where etcd's SHA-256 trailer starts. */
export type SourceFactory = (hasher: TrailerListener) => SnapshotSource;

export interface EtcdSettings {
  /** http://host:port, https://host:port or host:port */
  endpoint: string;
  caPem?: string;
  certPem?: string;
  keyPem?: string;
}

const SNAPSHOT_METHOD = '/etcdserverpb.Maintenance/Snapshot';

let loaded: Promise<typeof GrpcModule> | undefined;
/** gRPC is loaded only when a snapshot is streamed from etcd (restore, list and rewrap never need it). */
function grpcModule(): Promise<typeof GrpcModule> {
  loaded ??= import('@grpc/grpc-js');
  return loaded;
}

export function parseEtcdEndpoint(endpoint: string): { target: string; tls: boolean } {
  const match = /^(?:(https?):\/\/)?([^/\s]+?)\/?$/.exec(endpoint.trim());
  if (!match) throw new BackupError('IO_FAILED', `etcd endpoint "${endpoint}" is not http(s)://host:port`);
  return { target: match[2]!, tls: match[1] === 'https' };
}

// gRPC status codes (stable numbers, so this does not need @grpc/grpc-js loaded).
const UNAVAILABLE = 14;
const PERMISSION_DENIED = 7;
const UNAUTHENTICATED = 16;

function grpcFailure(endpoint: string, error: unknown): BackupError {
  if (error instanceof BackupError) return error;
  const e = error as Partial<Pick<ServiceError, 'details' | 'message'>> & { code?: number };
  const detail = (e.details || e.message || String(error)).slice(0, 300);
  let hint = '';
  if (e.code === UNAVAILABLE)
    hint = ': is etcd running there, and do --etcd-ca-file/--etcd-cert-file/--etcd-key-file match its TLS?';
  else if (e.code === UNAUTHENTICATED || e.code === PERMISSION_DENIED)
    hint = ': etcd refused the client; check the client certificate (--etcd-cert-file/--etcd-key-file)';
  return new BackupError(
    'IO_FAILED',
    `etcd snapshot from ${endpoint} failed: ${detail}${hint}`,
    { grpcCode: e.code },
    { cause: error },
  );
}

/** etcd's Maintenance.Snapshot as a byte stream: the database, then its 32-byte SHA-256. */
export function etcdSnapshotSource(settings: EtcdSettings): SourceFactory {
  return (hasher) => {
    const { target, tls } = parseEtcdEndpoint(settings.endpoint);
    const info: SourceInfo = { description: `etcd ${settings.endpoint}` };
    let client: Client | undefined;
    let call: ClientReadableStream<SnapshotResponse> | undefined;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      call?.cancel();
      client?.close();
    };
    // A minor GC per 2 MiB received from etcd (see gc.ts).
    const collect = garbageCollector();
    async function* chunks(): AsyncGenerator<Buffer> {
      let first = true;
      try {
        const grpc = await grpcModule();
        const creds: ChannelCredentials =
          tls || settings.caPem || settings.certPem
            ? grpc.credentials.createSsl(
                settings.caPem ? Buffer.from(settings.caPem) : null,
                settings.keyPem ? Buffer.from(settings.keyPem) : null,
                settings.certPem ? Buffer.from(settings.certPem) : null,
              )
            : grpc.credentials.createInsecure();
        if (closed) throw new BackupError('IO_FAILED', 'etcd snapshot cancelled');
        // A 1 MiB HTTP/2 window: with the 64 KiB default, throughput is capped at 64 KiB per
        // round trip (~64 MB/s at 1 ms RTT). Memory stays bounded: at most one window in flight.
        client = new grpc.Client(target, creds, {
          'grpc.max_receive_message_length': 64 * 1024 * 1024,
          'grpc-node.flow_control_window': 1 << 20,
        });
        // SnapshotRequest has no fields: its encoding is empty.
        call = client.makeServerStreamRequest(SNAPSHOT_METHOD, () => Buffer.alloc(0), decodeSnapshotResponse, {});
        for await (const message of call as AsyncIterable<SnapshotResponse>) {
          if (first) {
            first = false;
            info.databaseSize = message.remainingBytes + message.blob.length;
            info.storageVersion = message.version || undefined;
            if (message.revision) info.revision = message.revision;
            hasher.expectTrailerAt(info.databaseSize);
          }
          if (message.blob.length > 0) {
            yield message.blob;
            // Each message leaves its socket reads and blob behind, outside the V8 heap.
            collect(message.blob.length);
          }
        }
        if (first)
          throw new BackupError(
            'SNAPSHOT_CORRUPT',
            `etcd ${settings.endpoint} ended the snapshot stream without sending anything`,
          );
      } catch (error) {
        if (closed) throw new BackupError('IO_FAILED', 'etcd snapshot cancelled');
        throw grpcFailure(settings.endpoint, error);
      } finally {
        close();
      }
    }
    return { chunks: chunks(), info, close };
  };
}

/**
 * An existing snapshot file (e.g. from `etcdctl snapshot save`). Like etcdutl, a size of
 * 512*k + 32 means the file ends with SHA-256(database), which is then checked on the way.
 */
export function fileSnapshotSource(path: string): SourceFactory {
  return (hasher) => {
    let size: number;
    try {
      size = statSync(path).size;
    } catch (error) {
      throw new BackupError(
        'IO_FAILED',
        `cannot read snapshot file ${path}: ${(error as Error).message}`,
        {},
        { cause: error },
      );
    }
    const info: SourceInfo = { description: `file ${path}` };
    if (size % 512 === 32) {
      info.databaseSize = size - 32;
      hasher.expectTrailerAt(size - 32);
    }
    let closed = false;
    // One reused read buffer: the encryptor copies each chunk before it asks for the next one,
    // so reading allocates nothing per chunk (less garbage, lower peak RSS).
    async function* chunks(): AsyncGenerator<Buffer> {
      const handle = await open(path, 'r');
      const buffer = Buffer.allocUnsafe(1 << 20);
      try {
        while (!closed) {
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) return;
          yield buffer.subarray(0, bytesRead);
        }
        throw new BackupError('IO_FAILED', `reading ${path} was cancelled`);
      } finally {
        buffer.fill(0);
        await handle.close();
      }
    }
    return { chunks: chunks(), info, close: () => (closed = true) };
  };
}

/** Any async iterable of bytes (tests). Chunks must not be reused by the producer. */
export function iterableSource(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  description = 'stream',
): SourceFactory {
  return () => {
    async function* bytes(): AsyncGenerator<Buffer> {
      for await (const chunk of chunks) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
    return { chunks: bytes(), info: { description }, close: () => undefined };
  };
}
