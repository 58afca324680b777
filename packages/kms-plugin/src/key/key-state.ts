import { randomBytes } from 'node:crypto';
import { isOpenBaoError, type Logger, type TransitKey } from '@kdc/shared';
import { keyIdFor, keyIdHash, legacyKeyIdFor, type KeyIdentity, type KeyIdForm } from './keyid.ts';
import type { ErrorClass, PluginMetrics } from '../metrics.ts';
import type { OpenBaoSession } from './session.ts';

export interface PublishedKey {
  keyId: string;
  version: number;
}

/** How this plugin names its key versions: the identity, the form it publishes, and the URLs kdc1 ids were made under. */
export interface KeyIdScheme {
  identity: KeyIdentity;
  /** Published and used for Encrypt. */
  publish: KeyIdForm;
  /** --openbao-addr first, then every --legacy-key-id-openbao-addr: a kdc1 id made under any of them decrypts. */
  servers: readonly string[];
}

/**
 * Pure: the key_ids Decrypt accepts for every version the key still holds (the kdc2 id and a kdc1
 * id per known server), and the one to publish.
 */
export function keyIdsOf(scheme: KeyIdScheme, key: TransitKey): { byKeyId: Map<string, number>; latest: PublishedKey } {
  const byKeyId = new Map<string, number>();
  let latest: PublishedKey | undefined;
  for (const [version, created] of Object.entries(key.versions)) {
    const v = Number(version);
    const current = keyIdFor(scheme.identity, v, created);
    byKeyId.set(current, v);
    const legacy = scheme.servers.map((server) => legacyKeyIdFor(server, scheme.identity, v, created));
    for (const id of legacy) byKeyId.set(id, v);
    if (v === key.latestVersion) latest = { keyId: scheme.publish === 'kdc1' ? legacy[0]! : current, version: v };
  }
  if (!latest)
    throw new Error(`Transit key ${key.name} lists no creation time for its latest version ${key.latestVersion}`);
  return { byKeyId, latest };
}

/** Pure: which key to publish next. Never moves backwards, so the key_id cannot flip-flop. */
export function nextPublished(
  current: PublishedKey | undefined,
  observed: PublishedKey,
): { publish: PublishedKey; rollback: boolean } {
  if (!current || observed.version > current.version) return { publish: observed, rollback: false };
  // Same version: a different id means the key was deleted and recreated under the same name.
  return { publish: current, rollback: observed.version < current.version || observed.keyId !== current.keyId };
}

export function classify(error: unknown): ErrorClass {
  if (error instanceof Error && error.name === 'LoginBackoffError') return 'auth_failed';
  if (isOpenBaoError(error)) {
    switch (error.kind) {
      case 'unavailable':
        return 'openbao_unavailable';
      case 'sealed':
        return 'openbao_sealed';
      case 'denied':
        return 'openbao_denied';
      case 'not_found':
        return 'key_missing';
      case 'invalid':
        return 'openbao_invalid';
      default:
        return 'openbao_unavailable';
    }
  }
  return 'openbao_unavailable';
}

/**
 * What Status answers, kept in memory: a background loop reads the Transit key, adopts a newer
 * version, and proves encrypt+decrypt with the published version. Status never calls OpenBao.
 */
export class KeyState {
  private readonly session: OpenBaoSession;
  private readonly identity: KeyIdentity;
  private readonly scheme: KeyIdScheme;
  private readonly logger: Logger;
  private readonly metrics: PluginMetrics;
  private readonly staleAfterMs: number;
  private published: PublishedKey | undefined;
  private known = new Map<string, number>();
  private lastGood = 0;
  private lastError: ErrorClass | 'not_checked_yet' = 'not_checked_yet';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(input: {
    session: OpenBaoSession;
    scheme: KeyIdScheme;
    logger: Logger;
    metrics: PluginMetrics;
    staleAfterMs: number;
  }) {
    if (input.scheme.publish === 'kdc1' && input.scheme.servers.length === 0)
      throw new Error('publishing kdc1 key_ids needs the OpenBao address they hash');
    this.session = input.session;
    this.scheme = input.scheme;
    this.identity = input.scheme.identity;
    this.logger = input.logger;
    this.metrics = input.metrics;
    this.staleAfterMs = input.staleAfterMs;
    input.metrics.hooks.beforeScrape = () => {
      input.metrics.checkAge.set(this.lastGood ? (Date.now() - this.lastGood) / 1000 : -1);
      input.metrics.healthy.set(this.healthz() === 'ok' ? 1 : 0);
    };
  }

  get current(): PublishedKey | undefined {
    return this.published;
  }

  /** Version behind a key_id this plugin published or can still decrypt, else undefined. */
  versionOf(keyId: string): number | undefined {
    return this.known.get(keyId);
  }

  healthz(now = Date.now()): string {
    if (this.published && this.lastGood && now - this.lastGood <= this.staleAfterMs) return 'ok';
    return this.lastGood ? (this.lastError === 'not_checked_yet' ? 'status_stale' : this.lastError) : this.lastError;
  }

  /** One background check; also run at start-up before the socket is served. */
  check(): Promise<void> {
    this.running ??= this.runCheck().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runCheck(): Promise<void> {
    try {
      const end = this.metrics.openBaoDuration.startTimer({ operation: 'read_key' });
      const key = await this.session
        .call((c) => c.transit(this.identity.mount).readKey(this.identity.key))
        .finally(end);
      if (!key)
        throw Object.assign(new Error(`Transit key ${this.identity.key} does not exist`), {
          class: 'key_missing' as const,
        });
      const { byKeyId, latest } = keyIdsOf(this.scheme, key);
      const { publish, rollback } = nextPublished(this.published, latest);
      if (rollback) {
        this.fail(
          'key_rollback',
          'Transit reports an older or different latest version than the one published; keeping the published key_id',
        );
        return;
      }
      // The probe proves the full path for the version we publish, decrypt included.
      const probe = randomBytes(32);
      const ct = await this.session.call((c) =>
        c.transit(this.identity.mount).encrypt(this.identity.key, probe, { keyVersion: publish.version }),
      );
      const back = await this.session.call((c) =>
        c.transit(this.identity.mount).decrypt(this.identity.key, ct.ciphertext),
      );
      if (ct.keyVersion !== publish.version || !back.equals(probe)) {
        this.fail('probe_mismatch', 'encrypt/decrypt probe returned unexpected data');
        return;
      }
      for (const [id, v] of byKeyId) this.known.set(id, v);
      if (!this.published || this.published.keyId !== publish.keyId) {
        this.logger.info({ keyIdHash: keyIdHash(publish.keyId), version: publish.version }, 'publishing key_id');
        this.metrics.keyIdInfo.reset();
        this.metrics.keyIdInfo.set({ key_id_hash: keyIdHash(publish.keyId) }, 1);
        this.metrics.keyVersion.set(publish.version);
      }
      this.published = publish;
      this.lastGood = Date.now();
      this.lastError = 'not_checked_yet';
    } catch (error) {
      const cls = (error as { class?: ErrorClass }).class ?? classify(error);
      this.fail(cls, (error as Error).message);
    }
  }

  private fail(cls: ErrorClass, message: string): void {
    if (this.lastError !== cls) this.logger.warn({ class: cls, detail: message.slice(0, 200) }, 'health check failed');
    this.lastError = cls;
    this.metrics.errors.inc({ class: cls });
  }

  start(intervalMs: number): void {
    const loop = async () => {
      await this.check();
      this.timer = setTimeout(() => void loop(), intervalMs);
    };
    this.timer = setTimeout(() => void loop(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
