import type { OpenBaoClient } from './client.ts';
import { OpenBaoError } from './errors.ts';

export interface TransitKey {
  name: string;
  type: string;
  latestVersion: number;
  minDecryptionVersion: number;
  minEncryptionVersion: number;
  deletionAllowed: boolean;
  exportable: boolean;
  autoRotatePeriodSeconds: number;
  /** version -> creation time (unix seconds) */
  versions: Record<number, number>;
}

export interface CreateKeyOptions {
  type?: string;
  exportable?: boolean;
  derived?: boolean;
  autoRotatePeriod?: string;
}

export interface KeyConfig {
  min_decryption_version?: number;
  min_encryption_version?: number;
  deletion_allowed?: boolean;
  auto_rotate_period?: string;
}

export interface Ciphertext {
  ciphertext: string;
  keyVersion: number;
}

export type BatchItemResult<T> = { ok: true; value: T } | { ok: false; error: string };

const CIPHERTEXT_PREFIX = /^vault:v(\d+):/;

/** Transit key version of a `vault:vN:...` ciphertext, or null when it is not one. */
export function ciphertextVersion(ciphertext: string): number | null {
  const match = CIPHERTEXT_PREFIX.exec(ciphertext);
  return match ? Number(match[1]) : null;
}

interface RawKey {
  name: string;
  type: string;
  latest_version: number;
  min_decryption_version: number;
  min_encryption_version: number;
  deletion_allowed: boolean;
  exportable: boolean;
  auto_rotate_period?: number;
  keys: Record<string, number | string>;
}

function fromRawKey(raw: RawKey): TransitKey {
  const versions: Record<number, number> = {};
  for (const [version, created] of Object.entries(raw.keys ?? {})) {
    // aes keys report unix seconds; asymmetric ones report an object or RFC 3339 string.
    versions[Number(version)] = typeof created === 'number' ? created : Math.floor(Date.parse(String(created)) / 1000);
  }
  return {
    name: raw.name,
    type: raw.type,
    latestVersion: raw.latest_version,
    minDecryptionVersion: raw.min_decryption_version,
    minEncryptionVersion: raw.min_encryption_version,
    deletionAllowed: raw.deletion_allowed,
    exportable: raw.exportable,
    autoRotatePeriodSeconds: Number(raw.auto_rotate_period ?? 0),
    versions,
  };
}

const b64 = (data: Uint8Array | string) => Buffer.from(data).toString('base64');

/** Transit secrets engine at an explicit mount (node-vault's helpers hard-code `transit/`). */
export class TransitClient {
  private readonly client: OpenBaoClient;
  readonly mount: string;

  constructor(client: OpenBaoClient, mount: string) {
    this.client = client;
    this.mount = mount.replace(/^\/+|\/+$/g, '');
  }

  private path(...parts: string[]): string {
    return [this.mount, ...parts.map(encodeURIComponent)].join('/').replace(/%2F/g, '/');
  }

  async createKey(name: string, options: CreateKeyOptions = {}): Promise<void> {
    await this.client.request('POST', this.path('keys', name), {
      type: options.type ?? 'aes256-gcm96',
      exportable: options.exportable ?? false,
      derived: options.derived ?? false,
      ...(options.autoRotatePeriod ? { auto_rotate_period: options.autoRotatePeriod } : {}),
    });
  }

  async readKey(name: string): Promise<TransitKey | null> {
    const response = await this.client.readOrNull<{ data: RawKey }>(this.path('keys', name));
    return response ? fromRawKey(response.data) : null;
  }

  async listKeys(): Promise<string[]> {
    try {
      const response = await this.client.request<{ data: { keys: string[] } }>('LIST', this.path('keys'));
      return response.data.keys;
    } catch (error) {
      if (error instanceof OpenBaoError && error.status === 404) return [];
      throw error;
    }
  }

  async rotate(name: string): Promise<TransitKey> {
    const response = await this.client.request<{ data?: RawKey }>('POST', this.path('keys', name, 'rotate'), {});
    // Vault answers 204 without a body; OpenBao returns the key.
    if (response.data) return fromRawKey(response.data);
    const key = await this.readKey(name);
    if (!key) throw new Error(`transit key ${name} vanished right after rotation`);
    return key;
  }

  async configure(name: string, config: KeyConfig): Promise<void> {
    await this.client.request('POST', this.path('keys', name, 'config'), config);
  }

  async deleteKey(name: string): Promise<void> {
    await this.client.request('DELETE', this.path('keys', name));
  }

  async encrypt(
    name: string,
    plaintext: Uint8Array,
    options: { keyVersion?: number; associatedData?: Uint8Array } = {},
  ): Promise<Ciphertext> {
    const response = await this.client.request<{ data: { ciphertext: string; key_version?: number } }>(
      'POST',
      this.path('encrypt', name),
      {
        plaintext: b64(plaintext),
        ...(options.keyVersion ? { key_version: options.keyVersion } : {}),
        ...(options.associatedData ? { associated_data: b64(options.associatedData) } : {}),
      },
    );
    return withVersion(response.data);
  }

  async decrypt(name: string, ciphertext: string, options: { associatedData?: Uint8Array } = {}): Promise<Buffer> {
    const response = await this.client.request<{ data: { plaintext: string } }>('POST', this.path('decrypt', name), {
      ciphertext,
      ...(options.associatedData ? { associated_data: b64(options.associatedData) } : {}),
    });
    return Buffer.from(response.data.plaintext, 'base64');
  }

  async rewrap(name: string, ciphertext: string, options: { keyVersion?: number } = {}): Promise<Ciphertext> {
    const response = await this.client.request<{ data: { ciphertext: string; key_version?: number } }>(
      'POST',
      this.path('rewrap', name),
      {
        ciphertext,
        ...(options.keyVersion ? { key_version: options.keyVersion } : {}),
      },
    );
    return withVersion(response.data);
  }

  /** A fresh data key: `plaintext` mode returns it with its wrapped form, `wrapped` only the wrap. */
  async datakey(
    name: string,
    mode: 'plaintext' | 'wrapped',
    options: { bits?: 128 | 256 | 512; keyVersion?: number } = {},
  ) {
    const response = await this.client.request<{
      data: { ciphertext: string; plaintext?: string; key_version?: number };
    }>('POST', this.path('datakey', mode, name), {
      bits: options.bits ?? 256,
      ...(options.keyVersion ? { key_version: options.keyVersion } : {}),
    });
    const wrapped = withVersion(response.data);
    return {
      ...wrapped,
      plaintext: response.data.plaintext ? Buffer.from(response.data.plaintext, 'base64') : undefined,
    };
  }

  async encryptBatch(
    name: string,
    plaintexts: Uint8Array[],
    options: { keyVersion?: number } = {},
  ): Promise<BatchItemResult<Ciphertext>[]> {
    const items = await this.batch('encrypt', name, {
      batch_input: plaintexts.map((p) => ({ plaintext: b64(p) })),
      ...(options.keyVersion ? { key_version: options.keyVersion } : {}),
    });
    return items.map((item) =>
      item.error ? { ok: false, error: item.error } : { ok: true, value: withVersion(item as RawCiphertext) },
    );
  }

  async decryptBatch(name: string, ciphertexts: string[]): Promise<BatchItemResult<Buffer>[]> {
    const items = await this.batch('decrypt', name, { batch_input: ciphertexts.map((ciphertext) => ({ ciphertext })) });
    return items.map((item) =>
      item.error
        ? { ok: false, error: item.error }
        : { ok: true, value: Buffer.from(String(item.plaintext), 'base64') },
    );
  }

  async rewrapBatch(
    name: string,
    ciphertexts: string[],
    options: { keyVersion?: number } = {},
  ): Promise<BatchItemResult<Ciphertext>[]> {
    const items = await this.batch('rewrap', name, {
      batch_input: ciphertexts.map((ciphertext) => ({ ciphertext })),
      ...(options.keyVersion ? { key_version: options.keyVersion } : {}),
    });
    return items.map((item) =>
      item.error ? { ok: false, error: item.error } : { ok: true, value: withVersion(item as RawCiphertext) },
    );
  }

  /** Batch calls answer 400 when any item failed but still carry every item's result. */
  private async batch(operation: string, name: string, body: unknown): Promise<BatchItem[]> {
    try {
      const response = await this.client.request<{ data: { batch_results: BatchItem[] } }>(
        'POST',
        this.path(operation, name),
        body,
      );
      return response.data.batch_results;
    } catch (error) {
      const results = (error as OpenBaoError).body as { data?: { batch_results?: BatchItem[] } } | undefined;
      if (error instanceof OpenBaoError && error.status === 400 && results?.data?.batch_results)
        return results.data.batch_results;
      throw error;
    }
  }
}

interface RawCiphertext {
  ciphertext: string;
  key_version?: number;
}

interface BatchItem {
  ciphertext?: string;
  plaintext?: string;
  key_version?: number;
  error?: string;
}

function withVersion(data: RawCiphertext): Ciphertext {
  const keyVersion = data.key_version ?? ciphertextVersion(data.ciphertext) ?? 0;
  return { ciphertext: data.ciphertext, keyVersion };
}
