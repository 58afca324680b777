import { OpenBaoError } from './errors.ts';
import { OpenBaoTokenRejectedError, type TokenProvider, type TokenRejection } from './failure.ts';
import { httpTransport, TransportError, type HttpSend } from './http.ts';
import { TransitClient } from './transit.ts';

export interface OpenBaoClientOptions {
  /** e.g. https://openbao.example:8200 */
  endpoint: string;
  token?: string;
  /** OpenBao namespace (X-Vault-Namespace); undefined = root namespace. */
  namespace?: string;
  /** PEM CA bundle used to verify the server certificate. */
  caBundle?: string;
  timeoutMs?: number;
  /** A token that may change while we run (renewed, rotated); wins over `token`. withToken drops it. */
  credentials?: TokenProvider;
}

export interface AuthResult {
  clientToken: string;
  accessor: string;
  policies: string[];
  leaseDurationSeconds: number;
  renewable: boolean;
  metadata: Record<string, string>;
}

export interface TokenInfo {
  ttlSeconds: number;
  creationTtlSeconds: number;
  expireTime: string | null;
  renewable: boolean;
  policies: string[];
  displayName: string;
}

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'LIST';

interface RawAuth {
  client_token: string;
  accessor: string;
  policies: string[] | null;
  lease_duration: number;
  renewable: boolean;
  metadata: Record<string, string> | null;
}

/**
 * A typed OpenBao (or Vault) client. Every path is explicit (mounts are configurable) and the
 * namespace and token belong to the client instance; copies made with withToken/withNamespace
 * share one keep-alive transport (http.ts).
 */
export class OpenBaoClient {
  readonly endpoint: string;
  readonly namespace: string | undefined;
  private readonly token: string | undefined;
  private readonly send: HttpSend;
  private readonly options: OpenBaoClientOptions;

  constructor(options: OpenBaoClientOptions, shared?: HttpSend) {
    this.options = options;
    this.endpoint = options.endpoint.replace(/\/$/, '');
    this.namespace = normaliseNamespace(options.namespace);
    this.token = options.token;
    this.send = shared ?? httpTransport(this.endpoint, options.caBundle);
  }

  withToken(token: string | undefined): OpenBaoClient {
    return new OpenBaoClient({ ...this.options, token, credentials: undefined }, this.send);
  }

  withNamespace(namespace: string | undefined): OpenBaoClient {
    return new OpenBaoClient({ ...this.options, namespace }, this.send);
  }

  get hasToken(): boolean {
    const token = this.currentToken();
    return typeof token === 'string' && token.length > 0;
  }

  /** The rejection of this client's changing token, once OpenBao refused it (no call made). */
  tokenRejection(): TokenRejection | undefined {
    return this.options.credentials?.rejected();
  }

  private currentToken(): string | undefined {
    return this.options.credentials ? this.options.credentials.token() : this.token;
  }

  transit(mount = 'transit'): TransitClient {
    return new TransitClient(this, mount);
  }

  async request<T = Record<string, unknown>>(method: HttpMethod, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    const token = this.currentToken();
    if (token) headers['X-Vault-Token'] = token;
    if (this.namespace) headers['X-Vault-Namespace'] = this.namespace;
    const cleanPath = path.replace(/^\/+/, '');
    const errorPath = cleanPath.split('?')[0]!;
    let response;
    try {
      response = await this.send({
        method,
        path: `/v1/${cleanPath}`,
        headers,
        json: body,
        timeoutMs: this.options.timeoutMs,
      });
    } catch (error) {
      // Only the error code: a network error message can quote the request.
      const code = error instanceof TransportError ? error.code : 'ECONNRESET';
      throw new OpenBaoError({ status: 0, errors: [code], path: errorPath, method });
    }
    const { status, body: answer } = response;
    // sys/health answers standby, sealed and uninitialised servers with other codes, and a body.
    if (status === 200 || status === 204 || (errorPath === 'sys/health' && isObject(answer)))
      return (answer ?? {}) as T;
    const rawErrors = isObject(answer) ? answer.errors : undefined;
    const errors = Array.isArray(rawErrors) ? rawErrors.map(String) : [];
    // A refusal may be the token itself (expired, revoked): the provider checks, and the error says which.
    const rejection =
      (status === 401 || status === 403) && this.options.credentials
        ? await this.options.credentials.refused()
        : undefined;
    if (rejection)
      throw new OpenBaoTokenRejectedError({ status, errors, path: errorPath, method, body: answer, rejection });
    throw new OpenBaoError({ status, errors, path: errorPath, method, body: answer });
  }

  /** GET that maps 404 to null (a missing key, policy or role is an answer, not a failure). */
  async readOrNull<T = Record<string, unknown>>(path: string): Promise<T | null> {
    try {
      return await this.request<T>('GET', path);
    } catch (error) {
      if (error instanceof OpenBaoError && error.status === 404) return null;
      throw error;
    }
  }

  // ---- auth ----

  async loginKubernetes(mount: string, role: string, jwt: string): Promise<AuthResult> {
    return this.login(`auth/${mount}/login`, { role, jwt });
  }

  async loginAppRole(mount: string, roleId: string, secretId: string): Promise<AuthResult> {
    return this.login(`auth/${mount}/login`, { role_id: roleId, secret_id: secretId });
  }

  async loginUserpass(mount: string, username: string, password: string): Promise<AuthResult> {
    return this.login(`auth/${mount}/login/${encodeURIComponent(username)}`, { password });
  }

  private async login(path: string, body: unknown): Promise<AuthResult> {
    const response = await this.withToken(undefined).request<{ auth: RawAuth }>('POST', path, body);
    return fromRawAuth(response.auth);
  }

  async lookupSelf(): Promise<TokenInfo> {
    const { data } = await this.request<{ data: Record<string, unknown> }>('GET', 'auth/token/lookup-self');
    return {
      ttlSeconds: Number(data.ttl ?? 0),
      creationTtlSeconds: Number(data.creation_ttl ?? 0),
      expireTime: (data.expire_time as string | null) ?? null,
      renewable: Boolean(data.renewable),
      policies: (data.policies as string[] | null) ?? [],
      displayName: typeof data.display_name === 'string' ? data.display_name : '',
    };
  }

  async renewSelf(incrementSeconds?: number): Promise<AuthResult> {
    const response = await this.request<{ auth: RawAuth }>(
      'POST',
      'auth/token/renew-self',
      incrementSeconds ? { increment: `${incrementSeconds}s` } : {},
    );
    return fromRawAuth(response.auth);
  }

  async revokeSelf(): Promise<void> {
    await this.request('POST', 'auth/token/revoke-self', {});
  }

  async createToken(body: {
    policies?: string[];
    ttl?: string;
    renewable?: boolean;
    no_default_policy?: boolean;
    explicit_max_ttl?: string;
  }): Promise<AuthResult> {
    const response = await this.request<{ auth: RawAuth }>('POST', 'auth/token/create', body);
    return fromRawAuth(response.auth);
  }

  async revokeToken(token: string): Promise<void> {
    await this.request('POST', 'auth/token/revoke', { token });
  }

  // ---- ACL policies ----

  async readPolicy(name: string): Promise<string | null> {
    const response = await this.readOrNull<{ data?: { policy?: string }; policy?: string }>(`sys/policies/acl/${name}`);
    if (!response) return null;
    return response.data?.policy ?? response.policy ?? null;
  }

  async writePolicy(name: string, policy: string): Promise<void> {
    await this.request('PUT', `sys/policies/acl/${name}`, { policy });
  }

  async deletePolicy(name: string): Promise<void> {
    await this.request('DELETE', `sys/policies/acl/${name}`);
  }

  // ---- auth roles (any method whose roles live at auth/<mount>/role/<name>) ----

  async readAuthRole(mount: string, role: string): Promise<Record<string, unknown> | null> {
    const response = await this.readOrNull<{ data: Record<string, unknown> }>(`auth/${mount}/role/${role}`);
    return response?.data ?? null;
  }

  async writeAuthRole(mount: string, role: string, body: Record<string, unknown>): Promise<void> {
    await this.request('POST', `auth/${mount}/role/${role}`, body);
  }

  async deleteAuthRole(mount: string, role: string): Promise<void> {
    await this.request('DELETE', `auth/${mount}/role/${role}`);
  }

  // ---- mounts, namespaces, health ----

  async authMounts(): Promise<Record<string, { type: string }>> {
    const response = await this.request<{ data?: Record<string, { type: string }> } & Record<string, unknown>>(
      'GET',
      'sys/auth',
    );
    return (response.data ?? response) as Record<string, { type: string }>;
  }

  async enableAuth(mount: string, type: string): Promise<void> {
    await this.request('POST', `sys/auth/${mount}`, { type });
  }

  async secretMounts(): Promise<Record<string, { type: string }>> {
    const response = await this.request<{ data?: Record<string, { type: string }> } & Record<string, unknown>>(
      'GET',
      'sys/mounts',
    );
    return (response.data ?? response) as Record<string, { type: string }>;
  }

  async enableSecretsEngine(mount: string, type: string): Promise<void> {
    await this.request('POST', `sys/mounts/${mount}`, { type });
  }

  /** Creates a child namespace of this client's namespace (OpenBao >= 2.3; Vault Enterprise). */
  async createNamespace(name: string): Promise<void> {
    await this.request('POST', `sys/namespaces/${name}`, {});
  }

  async readNamespace(name: string): Promise<Record<string, unknown> | null> {
    const response = await this.readOrNull<{ data: Record<string, unknown> }>(`sys/namespaces/${name}`);
    return response?.data ?? null;
  }

  async health(): Promise<{ initialized: boolean; sealed: boolean; version: string }> {
    const body = await this.withToken(undefined).request<Record<string, unknown>>(
      'GET',
      'sys/health?standbyok=true&sealedcode=200&uninitcode=200',
    );
    return {
      initialized: Boolean(body.initialized),
      sealed: Boolean(body.sealed),
      version: typeof body.version === 'string' ? body.version : '',
    };
  }
}

function normaliseNamespace(namespace: string | undefined): string | undefined {
  if (!namespace || namespace === '/' || namespace === 'root') return undefined;
  return namespace.replace(/^\/+|\/+$/g, '');
}

function fromRawAuth(auth: RawAuth): AuthResult {
  return {
    clientToken: auth.client_token,
    accessor: auth.accessor,
    policies: auth.policies ?? [],
    leaseDurationSeconds: auth.lease_duration,
    renewable: auth.renewable,
    metadata: auth.metadata ?? {},
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
