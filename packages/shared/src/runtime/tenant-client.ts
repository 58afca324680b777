import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import type { TenantCredentials } from './tenant-kubeconfig.ts';

// Requests into a tenant's side (its apiserver, its plugin's probe port) from a controller every
// tenant shares: bounded bodies, a deadline, and failures described by a fixed class and Node's
// error code only. Error texts are not passed on: a TLS error, for one, quotes the names in the
// peer's certificate, which the tenant chose.

export type TenantRequestErrorKind = 'timeout' | 'tls' | 'connect' | 'tooLarge' | 'other';

export class TenantRequestError extends Error {
  readonly kind: TenantRequestErrorKind;
  readonly code?: string;
  constructor(kind: TenantRequestErrorKind, code?: string) {
    const safeCode = code && /^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? code : undefined;
    super(
      `${{ timeout: 'timed out', tls: 'TLS verification failed', connect: 'connection failed', tooLarge: 'answer too large', other: 'request failed' }[kind]}${safeCode ? ` (${safeCode})` : ''}`,
    );
    this.name = 'TenantRequestError';
    this.kind = kind;
    this.code = safeCode;
  }
}

export interface TenantResponse {
  status: number;
  body: string;
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

function classify(error: unknown): TenantRequestError {
  if (error instanceof TenantRequestError) return error;
  const code = (error as { code?: string })?.code;
  if (code && TLS_CODES.test(code)) return new TenantRequestError('tls', code);
  if (
    code &&
    ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'].includes(code)
  )
    return new TenantRequestError('connect', code);
  return new TenantRequestError('other', code);
}

/** A request whose answer is read up to maxBytes; never follows redirects. */
function boundedRequest(
  url: URL,
  options: RequestOptions,
  timeoutMs: number,
  maxBytes: number,
  payload?: string,
): Promise<TenantResponse> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<TenantResponse>((resolve, reject) => {
    // One deadline for the whole exchange: an idle timeout would let a server drip bytes for ever.
    const deadline = setTimeout(() => req.destroy(new TenantRequestError('timeout')), timeoutMs);
    const fail = (error: unknown) => {
      clearTimeout(deadline);
      reject(classify(error));
    };
    const req = send(url, { method: 'GET', agent: false, ...options }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= maxBytes) chunks.push(chunk);
        else req.destroy(new TenantRequestError('tooLarge'));
      });
      res.on('end', () => {
        if (size > maxBytes) return fail(new TenantRequestError('tooLarge'));
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(payload);
  });
}

/**
 * `host:port` as Kamaji writes it in `status.controlPlaneEndpoint` (IPv6 in brackets), as the
 * https URL to reach that control plane; undefined when it is not a plain host and port.
 */
export function controlPlaneUrl(endpoint: string | undefined): URL | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(endpoint ?? '');
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  const v6 = match[1];
  if (v6 && isIP(v6) !== 6) return undefined;
  return new URL(`https://${v6 ? `[${v6}]` : match[2]}:${port}`);
}

/** A client for one tenant apiserver: the platform's address, the tenant kubeconfig's CA and credentials. */
export class TenantApiClient {
  readonly server: URL;
  private readonly tls: RequestOptions;

  /**
   * `servername`: the name the certificate must carry when `server` is one replica's pod address
   * (the control plane's certificate names the platform's endpoint, not each pod).
   */
  constructor(server: URL, credentials: TenantCredentials, servername?: string) {
    if (server.protocol !== 'https:') throw new Error(`tenant apiserver address ${server.origin} is not https`);
    this.server = server;
    const auth = credentials.auth;
    this.tls = {
      ca: credentials.caPem,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(servername ? { servername } : {}),
      ...(auth.kind === 'clientCertificate'
        ? { cert: auth.certPem, key: auth.keyPem }
        : { headers: { Authorization: `Bearer ${auth.token}` } }),
    };
  }

  /** GET `path`; the answer is cut off (an error) beyond maxBytes. */
  get(path: string, input: { timeoutMs: number; accept?: string; maxBytes?: number }): Promise<TenantResponse> {
    return this.request('GET', path, input);
  }

  /**
   * Any verb, with an optional JSON body; the same bounds as get. `agent`: a keep-alive agent the
   * caller owns (and destroys) for a burst of requests; by default every request has its own
   * connection.
   */
  request(
    method: 'GET' | 'PUT' | 'POST',
    path: string,
    input: { timeoutMs: number; accept?: string; maxBytes?: number; body?: unknown; agent?: HttpsAgent },
  ): Promise<TenantResponse> {
    const url = new URL(path, this.server);
    const payload = input.body === undefined ? undefined : JSON.stringify(input.body);
    const headers: Record<string, string | number> = {
      ...(this.tls.headers as Record<string, string> | undefined),
      Accept: input.accept ?? 'application/json',
    };
    if (payload !== undefined)
      Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) });
    return boundedRequest(
      url,
      { ...this.tls, method, headers, ...(input.agent ? { agent: input.agent } : {}) },
      input.timeoutMs,
      input.maxBytes ?? 64 * 1024,
      payload,
    );
  }
}

/** A plain-HTTP GET into a pod (e.g. a probe port), bounded like the apiserver calls. */
export function podGet(url: URL, input: { timeoutMs: number; maxBytes: number }): Promise<TenantResponse> {
  if (url.protocol !== 'http:') return Promise.reject(new Error(`${url.protocol} is not http:`));
  return boundedRequest(url, {}, input.timeoutMs, input.maxBytes);
}
