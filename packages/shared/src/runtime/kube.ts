import { setTimeout as delay } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';

// A small JSON client over the kubeconfig's transport. client-node's generated APIs turn
// objects into model classes (and MicroTime into Date with millisecond precision); controllers
// here work on plain JSON objects, exactly as the apiserver sends them.

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
    ownerReferences?: unknown[];
    generateName?: string;
    managedFields?: unknown[];
  };
  [key: string]: unknown;
}

export interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface ResourceRef {
  group: string; // '' for core
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** A ResourceRef that may name the type of its objects (see resources.ts), so reads infer it. */
export type TypedRef<T> = ResourceRef & { readonly object?: T };

export function resourcePath(ref: ResourceRef): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : '';
  const sub = ref.subresource ? `/${ref.subresource}` : '';
  return `${base}${ns}/${ref.plural}${name}${sub}`;
}

export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly body: unknown;
  /** The answer's Retry-After, in seconds, when it had one. */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, reason: string, message: string, body: unknown, retryAfterSeconds?: number) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    this.body = body;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof KubeApiError && e.status === 409;
export const isAlreadyExists = (e: unknown) =>
  e instanceof KubeApiError && e.status === 409 && e.reason === 'AlreadyExists';

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface RequestInput {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  /** e.g. `application/json;as=Table;v=v1;g=meta.k8s.io` for server-side printing. */
  accept?: string;
  timeoutMs?: number;
  /** Ends the request wherever it is (connect, send or body): a total deadline, unlike the idle `timeoutMs`. */
  signal?: AbortSignal;
}

/**
 * A request failed on a reset connection before any answer: on a reused keep-alive connection
 * (any method: it never reached the server), or a GET on any connection (idempotent).
 */
class ResetBeforeAnswerError extends Error {
  readonly reused: boolean;
  constructor(cause: Error, reused: boolean) {
    super(cause.message, { cause });
    this.reused = reused;
    this.name = 'ResetBeforeAnswerError';
  }
}

/** How often a request reset before any answer goes again, and after how long (none on a reused connection). */
const RESET_RETRIES = 3;
/** How often a GET answered 503 with Retry-After (a replica shutting down) is asked again. */
const UNAVAILABLE_RETRIES = 3;
const RESET_BACKOFF_MS = 100;

/** Retry-After in seconds (the apiserver sends whole seconds, never a date); undefined when absent or unreadable. */
function retryAfterSeconds(header: string | undefined): number | undefined {
  const seconds = Number(header);
  return header !== undefined && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

export class KubeClient {
  readonly config: KubeConfig;
  private readonly server: URL;
  /** A total deadline for every request that brings no signal of its own (kubectl's --request-timeout). */
  requestTimeoutMs?: number;
  /**
   * How often a request the apiserver answered 429 (too many requests, storage initializing) is
   * sent again, after a short backoff, as client-go does: for one-shot callers (the CLI). The
   * controllers keep 0: their work queues back off and retry already.
   */
  tooManyRequestsRetries = 0;
  private agent: { fingerprint: string; agent: HttpsAgent } | undefined;
  /** Told of every answer (status 0: no answer), as client-go's request metrics are. */
  onResponse?: (method: string, path: string, status: number) => void;
  /** Told of every write (create, post, replace, patch, delete) once it is answered or failed: caches of its own objects a caller keeps may be behind. */
  onWrite?: (ref: ResourceRef) => void;

  constructor(config: KubeConfig) {
    this.config = config;
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster: set current-context');
    this.server = new URL(cluster.server);
  }

  static fromFile(path: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return new KubeClient(kc);
  }

  /** From kubeconfig text we trust: client-node runs its exec plugins and reads the files it names. A tenant's goes through parseTenantKubeconfig. */
  static fromString(text: string): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromString(text);
    return new KubeClient(kc);
  }

  /**
   * KUBECONFIG, else ~/.kube/config, else the pod's ServiceAccount. With none of them client-node
   * would fall back to http://localhost and fail every request, forever: refuse at start instead.
   */
  static fromDefault(env: Record<string, string | undefined> = process.env, home: string = homedir()): KubeClient {
    if (!env.KUBECONFIG && !existsSync(join(home, '.kube', 'config')) && !env.KUBERNETES_SERVICE_HOST) {
      throw new Error(
        'no Kubernetes credentials: set KUBECONFIG to a kubeconfig file, or run in a pod (KUBERNETES_SERVICE_HOST and its ServiceAccount token)',
      );
    }
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubeClient(kc);
  }

  async request<T>(method: string, path: string, input: RequestInput = {}): Promise<T> {
    for (let told = 0, resets = 0, fresh = false; ;) {
      try {
        return await this.send<T>(method, path, input, fresh);
      } catch (error) {
        // An apiserver replica going away resets its connections: a request on a kept-alive one
        // never reached it and goes again at once (Go's transport), and a GET goes again after a
        // short pause, as client-go retries GETs on "connection reset" and EOF. The one sent again
        // after a kept-alive connection failed goes on a new connection: every other connection
        // kept alive to that replica is dead too, and the pool would hand them out one by one
        // before their closes are read (the e2e rollout reader lost a GET so: 4 resets in 1 ms).
        if (error instanceof ResetBeforeAnswerError) {
          if (resets++ >= RESET_RETRIES) throw error.cause;
          if (!error.reused) await delay(RESET_BACKOFF_MS * 2 ** (resets - 1));
          fresh = fresh || error.reused;
          continue;
        }
        if (!(error instanceof KubeApiError)) throw error;
        const waitMs = this.serverAsksAgain(error, method, told++);
        if (waitMs === undefined) throw error;
        await delay(waitMs);
        // A 503 comes from a replica going away: the Service sends a new connection elsewhere.
        fresh = fresh || error.status === 503;
      }
    }
  }

  /**
   * The one rule for answers that say "try again" (client-go's checkWait): how long to wait before
   * asking again, or undefined to fail now. Retry-After is honoured, at most 2 s.
   * - 429 (too many requests, storage initializing): as often as the caller asked
   *   (tooManyRequestsRetries), any method, since the request was refused before it ran; without
   *   Retry-After, a backoff from 250 ms.
   * - 503 with Retry-After (a replica shutting down: its WithWaitGroup filter): a GET, up to 3 times.
   *   A write is not repeated (it may have run), nor a 503 without Retry-After (a real outage).
   */
  private serverAsksAgain(error: KubeApiError, method: string, told: number): number | undefined {
    const retryAfterMs =
      error.retryAfterSeconds === undefined ? undefined : Math.min(error.retryAfterSeconds, 2) * 1000;
    if (error.status === 429 && told < this.tooManyRequestsRetries)
      return retryAfterMs ?? Math.min(250 * 2 ** told, 2000);
    if (error.status === 503 && method === 'GET' && retryAfterMs !== undefined && told < UNAVAILABLE_RETRIES)
      return retryAfterMs;
    return undefined;
  }

  /** fresh: on a connection of its own, not one kept alive (nor kept alive after it). */
  private async send<T>(method: string, path: string, input: RequestInput, fresh = false): Promise<T> {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(input.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const signal = input.signal ?? (this.requestTimeoutMs ? AbortSignal.timeout(this.requestTimeoutMs) : undefined);
    const options: RequestOptions = { method, headers: { Accept: input.accept ?? 'application/json' }, signal };
    await this.config.applyToHTTPSOptions(options);
    if (fresh) options.agent = false;
    else if (url.protocol === 'https:' && options.agent instanceof HttpsAgent)
      options.agent = this.keepAliveAgent(options);
    const payload =
      input.body === undefined ? undefined : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
    if (payload !== undefined) {
      options.headers = {
        ...options.headers,
        'Content-Type': input.contentType ?? 'application/json',
        'Content-Length': Buffer.byteLength(payload),
      };
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<T>((resolve, reject) => {
      const req = send(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            // non-JSON answers (e.g. /readyz) stay text
          }
          const status = res.statusCode ?? 0;
          this.onResponse?.(method, path, status);
          if (status >= 200 && status < 300) return resolve(body as T);
          const s = body as { reason?: string; message?: string };
          reject(
            new KubeApiError(
              status,
              s?.reason ?? '',
              `${method} ${path}: ${status} ${s?.message ?? text.slice(0, 300)}`,
              body,
              retryAfterSeconds(res.headers['retry-after']),
            ),
          );
        });
        res.on('error', reject);
      });
      let answered = false;
      req.on('response', () => (answered = true));
      req.on('error', (error: NodeJS.ErrnoException) => {
        this.onResponse?.(method, path, 0);
        const reset = !answered && !signal?.aborted && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        if (reset && (req.reusedSocket || method === 'GET'))
          return reject(new ResetBeforeAnswerError(error, req.reusedSocket));
        reject(error);
      });
      if (input.timeoutMs)
        req.setTimeout(input.timeoutMs, () =>
          req.destroy(new Error(`${method} ${path}: timed out after ${input.timeoutMs}ms`)),
        );
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /**
   * client-node hands out an https.Agent without keep-alive: every request was a new TLS
   * connection (a handshake and a new SecureContext: most of a controller's CPU at a resync).
   * One keep-alive agent per set of TLS credentials instead; they are still read on every
   * request, so a rotated client certificate gets a new agent.
   */
  private keepAliveAgent(options: RequestOptions): HttpsAgent {
    const tls = {
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: options.rejectUnauthorized,
      servername: options.servername,
    };
    const hash = createHash('sha256');
    for (const value of Object.values(tls))
      hash
        .update(Buffer.isBuffer(value) || typeof value === 'string' ? value : JSON.stringify(value ?? null))
        .update('|');
    const fingerprint = hash.digest('hex');
    if (this.agent?.fingerprint !== fingerprint) {
      // Requests (and watches) on the old connections get a minute to finish.
      const old = this.agent?.agent;
      if (old) setTimeout(() => old.destroy(), 60_000).unref();
      this.agent = { fingerprint, agent: new HttpsAgent({ ...tls, keepAlive: true }) };
    }
    return this.agent.agent;
  }

  get<T extends KubeObject = KubeObject>(ref: TypedRef<T>): Promise<T> {
    return this.request<T>('GET', resourcePath(ref));
  }

  async getOrNull<T extends KubeObject = KubeObject>(ref: TypedRef<T>): Promise<T | null> {
    try {
      return await this.get<T>(ref);
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  list<T extends KubeObject = KubeObject>(ref: TypedRef<T>, query: RequestInput['query'] = {}): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', resourcePath(ref), { query });
  }

  create<T extends KubeObject = KubeObject>(
    ref: TypedRef<T>,
    body: KubeObject,
    query: RequestInput['query'] = {},
  ): Promise<T> {
    return this.writing(ref, this.request<T>('POST', resourcePath({ ...ref, name: undefined }), { body, query }));
  }

  /** POST to the exact path of `ref`, e.g. a subresource such as serviceaccounts/<sa>/token. */
  post<T>(ref: ResourceRef, body: unknown): Promise<T> {
    return this.writing(ref, this.request<T>('POST', resourcePath(ref), { body }));
  }

  replace<T extends KubeObject = KubeObject>(ref: TypedRef<T>, body: KubeObject): Promise<T> {
    return this.writing(ref, this.request<T>('PUT', resourcePath(ref), { body }));
  }

  patch<T extends KubeObject = KubeObject>(
    ref: TypedRef<T>,
    patch: unknown,
    type: PatchType = 'merge',
    query: RequestInput['query'] = {},
  ): Promise<T> {
    return this.writing(
      ref,
      this.request<T>('PATCH', resourcePath(ref), { body: patch, contentType: PATCH_CONTENT_TYPE[type], query }),
    );
  }

  /** Server-side apply with our field manager. */
  apply<T extends KubeObject = KubeObject>(
    ref: TypedRef<T>,
    body: KubeObject,
    fieldManager: string,
    force = true,
  ): Promise<T> {
    return this.patch<T>(ref, body, 'apply', { fieldManager, force });
  }

  async delete(ref: ResourceRef, query: RequestInput['query'] = {}): Promise<void> {
    try {
      await this.writing(ref, this.request('DELETE', resourcePath(ref), { query }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async writing<T>(ref: ResourceRef, answer: Promise<T>): Promise<T> {
    try {
      return await answer;
    } finally {
      this.onWrite?.(ref);
    }
  }
}

/** A core resource whose plural is chosen at run time; known resources are in RESOURCES. */
export const CORE = (plural: string, namespace?: string, name?: string): ResourceRef => ({
  group: '',
  version: 'v1',
  plural,
  namespace,
  name,
});

/** A ServiceAccount token from the TokenRequest API (what kubelet projects into a pod). */
export async function requestServiceAccountToken(
  kube: KubeClient,
  namespace: string,
  serviceAccount: string,
  audiences: string[] | undefined,
  expirationSeconds: number,
): Promise<string> {
  const response = await kube.post<{ status: { token: string } }>(
    { ...CORE('serviceaccounts', namespace, serviceAccount), subresource: 'token' },
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { ...(audiences ? { audiences } : {}), expirationSeconds },
    },
  );
  return response.status.token;
}
