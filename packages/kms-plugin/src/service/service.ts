import { status as GrpcStatus } from '@grpc/grpc-js';
import { isOpenBaoError, type BatchItemResult, type Ciphertext, type Logger } from '@kdc/shared';
import type { KeyState } from '../key/key-state.ts';
import { classify } from '../key/key-state.ts';
import type { PluginMetrics } from '../metrics.ts';
import type { OpenBaoSession } from '../key/session.ts';
import { BatchItemError, DeadlineExceededError, GroupCommit, QueueFullError } from './group-commit.ts';
import type { UnaryCall, UnaryCallback, UnaryHandler } from '../transport/grpc-server.ts';
import { KMS_LIMITS } from '../transport/proto.ts';
import {
  checkAnnotations,
  checkCiphertext,
  checkKeyId,
  checkPlaintext,
  checkPlaintextSize,
  RequestError,
} from './validate.ts';

interface StatusResponse {
  version: string;
  healthz: string;
  key_id: string;
}
interface EncryptRequest {
  plaintext?: Buffer;
  uid?: string;
}
interface EncryptResponse {
  ciphertext: Buffer;
  key_id: string;
  annotations: Record<string, Buffer>;
}
interface DecryptRequest {
  ciphertext?: Buffer;
  uid?: string;
  key_id?: string;
  annotations?: Record<string, Buffer>;
}
interface DecryptResponse {
  plaintext: Buffer;
}

class ServiceError extends Error {
  readonly code: GrpcStatus;
  constructor(code: GrpcStatus, message: string) {
    super(message);
    this.code = code;
  }
}

const CODE_NAMES: Partial<Record<GrpcStatus, string>> = {
  [GrpcStatus.OK]: 'OK',
  [GrpcStatus.INVALID_ARGUMENT]: 'InvalidArgument',
  [GrpcStatus.UNAVAILABLE]: 'Unavailable',
  [GrpcStatus.INTERNAL]: 'Internal',
  [GrpcStatus.FAILED_PRECONDITION]: 'FailedPrecondition',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
};

/** Maps an OpenBao failure to the gRPC code the apiserver should see (no raw error text). */
function fromOpenBao(error: unknown, operation: string): ServiceError {
  if (error instanceof ServiceError) return error;
  if (error instanceof QueueFullError)
    return new ServiceError(GrpcStatus.RESOURCE_EXHAUSTED, `${operation}: ${error.message}; retry later`);
  if (error instanceof DeadlineExceededError)
    return new ServiceError(GrpcStatus.DEADLINE_EXCEEDED, `${operation}: ${error.message}`);
  if (error instanceof BatchItemError)
    return new ServiceError(GrpcStatus.INVALID_ARGUMENT, `${operation}: OpenBao refused the data`);
  if (isOpenBaoError(error, 'invalid'))
    return new ServiceError(GrpcStatus.INVALID_ARGUMENT, `${operation}: OpenBao refused the data (${classify(error)})`);
  return new ServiceError(GrpcStatus.UNAVAILABLE, `${operation}: OpenBao call failed (${classify(error)})`);
}

export interface ServiceDeps {
  state: KeyState;
  session: OpenBaoSession;
  mount: string;
  key: string;
  logger: Logger;
  metrics: PluginMetrics;
  /** Counts in-flight calls so shutdown can drain them. */
  inFlight: { count: number };
  /** Calls that may wait for OpenBao (per operation); default GROUP_COMMIT.maxQueued. */
  maxQueuedCalls?: number;
}

/** Batches at most this many items, with at most this many Transit calls in flight and this many calls waiting. */
export const GROUP_COMMIT = { maxBatch: 128, maxInFlight: 4, maxQueued: 1024 };

/** The gRPC deadline of a call as epoch ms (Infinity when the caller set none). */
function deadlineOf<Req>(call: UnaryCall<Req>): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

export function kmsService(deps: ServiceDeps): Record<'Status' | 'Encrypt' | 'Decrypt', UnaryHandler> {
  const { state, session, mount, key, metrics, logger } = deps;
  const groupCommit = { ...GROUP_COMMIT, maxQueued: deps.maxQueuedCalls ?? GROUP_COMMIT.maxQueued };
  const timed = <T>(operation: string, call: () => Promise<T>) => {
    const end = metrics.openBaoDuration.startTimer({ operation });
    return call().finally(end);
  };
  const encrypts = new GroupCommit<{ plaintext: Buffer; version: number }, Ciphertext>(async (items) => {
    // One Transit batch per key version (a batch names one version); almost always one.
    const versions = [...new Set(items.map((i) => i.version))];
    const results = new Map<number, BatchItemResult<Ciphertext>[]>();
    await Promise.all(
      versions.map(async (version) => {
        const batch = items.filter((i) => i.version === version).map((i) => i.plaintext);
        results.set(
          version,
          await timed('encrypt', () =>
            session.call((client) => client.transit(mount).encryptBatch(key, batch, { keyVersion: version })),
          ),
        );
      }),
    );
    const cursor = new Map<number, number>();
    return items.map((i) => {
      const index = cursor.get(i.version) ?? 0;
      cursor.set(i.version, index + 1);
      return results.get(i.version)![index]!;
    });
  }, groupCommit);
  const decrypts = new GroupCommit<string, Buffer>(
    (texts) => timed('decrypt', () => session.call((client) => client.transit(mount).decryptBatch(key, texts))),
    groupCommit,
  );
  encrypts.onBatch = (size) => metrics.batchSize.observe({ operation: 'encrypt' }, size);
  decrypts.onBatch = (size) => metrics.batchSize.observe({ operation: 'decrypt' }, size);

  function unary<Req, Res>(
    operation: string,
    handler: (request: Req, deadline: number) => Promise<Res> | Res,
  ): UnaryHandler {
    return ((call: UnaryCall<Req>, callback: UnaryCallback<Res>) => {
      const end = metrics.requestDuration.startTimer({ operation });
      deps.inFlight.count++;
      Promise.resolve()
        .then(() => handler(call.request, deadlineOf(call)))
        .then(
          (response) => {
            end({ code: 'OK' });
            callback(null, response);
          },
          (error: unknown) => {
            const failure =
              error instanceof RequestError
                ? new ServiceError(GrpcStatus.INVALID_ARGUMENT, error.message)
                : error instanceof ServiceError
                  ? error
                  : fromOpenBao(error, operation);
            if (failure.code === GrpcStatus.INVALID_ARGUMENT)
              metrics.errors.inc({
                class:
                  error instanceof RequestError && /key_id/.test(error.message) ? 'key_id_unknown' : 'protocol_limit',
              });
            else if (failure.code === GrpcStatus.RESOURCE_EXHAUSTED) metrics.errors.inc({ class: 'queue_full' });
            else if (failure.code === GrpcStatus.DEADLINE_EXCEEDED) metrics.errors.inc({ class: 'deadline_exceeded' });
            end({ code: CODE_NAMES[failure.code] ?? String(failure.code) });
            logger.debug(
              {
                operation,
                uid: (call.request as { uid?: string })?.uid?.slice(0, 64),
                code: failure.code,
                detail: failure.message,
              },
              'request refused',
            );
            callback({ code: failure.code, details: failure.message });
          },
        )
        .finally(() => deps.inFlight.count--);
    }) as UnaryHandler;
  }

  return {
    Status: unary<Record<string, never>, StatusResponse>('status', () => {
      const current = state.current;
      // An empty key_id would make the apiserver discard us; before the first good check we
      // answer with an error instead.
      if (!current) throw new ServiceError(GrpcStatus.UNAVAILABLE, `no key_id yet: ${state.healthz()}`);
      return { version: 'v2', healthz: state.healthz(), key_id: current.keyId };
    }),

    Encrypt: unary<EncryptRequest, EncryptResponse>('encrypt', async (request, deadline) => {
      const plaintext = checkPlaintext(request.plaintext);
      const published = state.current;
      if (!published) throw new ServiceError(GrpcStatus.UNAVAILABLE, `no key_id yet: ${state.healthz()}`);
      checkPlaintextSize(plaintext, published.version);
      const result = await encrypts.submit({ plaintext, version: published.version }, deadline);
      if (result.keyVersion !== published.version) {
        throw new ServiceError(
          GrpcStatus.INTERNAL,
          `OpenBao encrypted with version ${result.keyVersion}, not the published ${published.version}`,
        );
      }
      // Key types with more overhead than AES-GCM exist: never hand out what Decrypt would refuse.
      if (Buffer.byteLength(result.ciphertext, 'latin1') > KMS_LIMITS.maxCiphertextBytes) {
        throw new ServiceError(
          GrpcStatus.INTERNAL,
          `OpenBao returned a ciphertext over the ${KMS_LIMITS.maxCiphertextBytes} bytes Decrypt accepts`,
        );
      }
      return { ciphertext: Buffer.from(result.ciphertext, 'latin1'), key_id: published.keyId, annotations: {} };
    }),

    Decrypt: unary<DecryptRequest, DecryptResponse>('decrypt', async (request, deadline) => {
      const keyId = checkKeyId(request.key_id);
      checkAnnotations(request.annotations);
      const { text, version } = checkCiphertext(request.ciphertext);
      const expected = state.versionOf(keyId);
      if (expected === undefined)
        throw new RequestError('key_id', 'is not a key_id this plugin produced for its Transit key');
      if (expected !== version)
        throw new RequestError(
          'ciphertext',
          `was made with key version ${version}, but key_id names version ${expected}`,
        );
      return { plaintext: await decrypts.submit(text, deadline) };
    }),
  };
}
