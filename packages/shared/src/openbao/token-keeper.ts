import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MAX_TIMER_MS } from '../runtime/workqueue.ts';
import type { OpenBaoClient } from './client.ts';
import { isOpenBaoError } from './errors.ts';
import type { TokenProvider, TokenRejection } from './failure.ts';

// A controller's own OpenBao token, kept alive: looked up at start, renewed at two thirds of its
// TTL while renewable, re-read from its file (a mounted Secret that an operator rotates) every
// few seconds and whenever OpenBao refuses a call, so a replaced token is used without a
// restart. What it knows feeds the metrics and the TokenRejection that conditions quote.

export function openBaoTokenMetrics(registry: Registry) {
  return {
    ttl: new Gauge({
      name: 'kdc_openbao_token_ttl_seconds',
      help: "Seconds the controller's OpenBao token has left (+Inf: no expiry; 0: refused or unknown)",
      registers: [registry],
    }),
    valid: new Gauge({
      name: 'kdc_openbao_token_valid',
      help: "0 while OpenBao refuses the controller's token (expired, revoked), else 1",
      registers: [registry],
    }),
    renewals: new Counter({
      name: 'kdc_openbao_token_renewals_total',
      help: 'Token renewals by result (ok; capped: max TTL reached; refused; error)',
      labelNames: ['result'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'kdc_openbao_token_reloads_total',
      help: 'New tokens read from the token file',
      registers: [registry],
    }),
  };
}

export type OpenBaoTokenMetrics = ReturnType<typeof openBaoTokenMetrics>;

/** Pure: when to renew a token with `ttlSeconds` left; undefined for a token that never expires. */
export function renewalDelayMs(ttlSeconds: number): number | undefined {
  if (ttlSeconds <= 0) return undefined;
  return Math.min(Math.max(1_000, (ttlSeconds * 1000 * 2) / 3), MAX_TIMER_MS);
}

/** Pure: a renewal that granted less than a third of what we asked hit the token's max TTL. */
export function renewalCapped(grantedSeconds: number, requestedSeconds: number): boolean {
  return requestedSeconds > 0 && grantedSeconds < requestedSeconds / 3;
}

/**
 * Pure: when a token OpenBao just accepted expires (epoch ms; null: never), from lookup-self's
 * `ttl` (whole seconds, rounded down) and `expire_time`. OpenBao's own expire_time wins: in a
 * token's last second the ttl reads 0, which alone would mean "never expires", and counting the
 * TTL from when the answer arrived would put the expiry late by the answer's latency (a refusal
 * right at expiry would then read as a revocation).
 */
export function tokenExpiry(input: { ttlSeconds: number; expireTime?: string | null; now: number }): number | null {
  const stated = input.expireTime ? Date.parse(input.expireTime) : NaN;
  if (Number.isFinite(stated)) return stated;
  return input.ttlSeconds > 0 ? input.now + input.ttlSeconds * 1000 : null;
}

/** OpenBao reports a TTL in whole seconds: an expiry we computed may be this much late. */
const EXPIRY_SLACK_MS = 2_000;

/** Pure: why OpenBao refuses a token, from what we knew of it. */
export function rejectionReason(input: {
  expiresAt: number | null | undefined;
  renewalRefused: boolean;
  now: number;
}): string {
  if (typeof input.expiresAt === 'number' && input.expiresAt <= input.now + EXPIRY_SLACK_MS)
    return 'its TTL ran out (it expired)';
  if (input.renewalRefused) return 'its renewal was refused (revoked, or past its max TTL)';
  if (input.expiresAt === undefined) return 'OpenBao does not know it (revoked, expired or never valid)';
  return 'it was revoked';
}

/** Pure: where an operator replaces the token, for messages, from the controller's environment. */
export function tokenSourceHint(env: Record<string, string | undefined>): string {
  if (env.OPENBAO_TOKEN) return 'OPENBAO_TOKEN (and restart the controller)';
  if (env.OPENBAO_TOKEN_SECRET) return `the Secret ${env.OPENBAO_TOKEN_SECRET}`;
  return `the token file ${env.OPENBAO_TOKEN_FILE}`;
}

export interface TokenKeeperOptions {
  /** Endpoint and CA (root namespace); its own token is not used. */
  base: OpenBaoClient;
  /** A fixed token (OPENBAO_TOKEN); `tokenFile` is preferred because it can be rotated. */
  token?: string;
  tokenFile?: string;
  /** Where an operator replaces the token (tokenSourceHint). */
  replace: string;
  logger: Logger;
  metrics?: OpenBaoTokenMetrics;
  /** How often the token is looked up even when nothing uses it (absent: only at start, renewal and refusals). */
  checkEveryMs?: number;
  /** How often the token file is re-read. */
  fileCheckMs?: number;
}

/** How long a verdict on the token stands before a refusal makes us ask OpenBao again. */
const RECHECK_MS = 2_000;
/** Retry after a renewal or lookup that did not reach OpenBao. */
const RETRY_MS = 5_000;

export class TokenKeeper implements TokenProvider {
  private readonly options: TokenKeeperOptions;
  private current: string | undefined;
  /** Expiry (epoch ms; null: never) and renewal terms of the current token, once OpenBao accepted it. */
  private terms: { expiresAt: number | null; renewable: boolean; requestSeconds: number } | undefined;
  private rejection: TokenRejection | undefined;
  private renewalRefused = false;
  private checkedAt = 0;
  private checking: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private fileTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(options: TokenKeeperOptions) {
    this.options = options;
    const metrics = options.metrics;
    if (metrics) {
      // Not known to be refused until OpenBao says so (an outage at start is not a bad token).
      metrics.valid.set(1);
      // Computed at scrape time, so the gauge runs down between renewals.
      (metrics.ttl as unknown as { collect?: () => void }).collect = () => metrics.ttl.set(this.ttlSeconds());
    }
  }

  token(): string | undefined {
    return this.current;
  }

  rejected(): TokenRejection | undefined {
    return this.rejection;
  }

  /** Reads the token and asks OpenBao about it. Throws only when there is no token to read. */
  async start(): Promise<void> {
    this.current = await this.read();
    if (!this.current) throw new Error(`no OpenBao token in ${this.options.replace}`);
    await this.check();
    if (this.options.tokenFile) {
      this.fileTimer = setInterval(() => void this.reload(), this.options.fileCheckMs ?? 10_000);
      this.fileTimer.unref();
    }
    // A controller that trusts its drift clock may not call OpenBao for an hour: a revoked token
    // must still show (metrics, and the conditions of the objects, which stop trusting the clock).
    const every = this.options.checkEveryMs;
    if (every) {
      this.checkTimer = setInterval(() => {
        if (Date.now() - this.checkedAt < every) return;
        this.checking ??= this.check().finally(() => (this.checking = undefined));
      }, every);
      this.checkTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.fileTimer) clearInterval(this.fileTimer);
    if (this.checkTimer) clearInterval(this.checkTimer);
  }

  async refused(): Promise<TokenRejection | undefined> {
    if (Date.now() - this.checkedAt >= RECHECK_MS) {
      this.checking ??= (async () => {
        if (!(await this.reload())) await this.check();
      })().finally(() => (this.checking = undefined));
      await this.checking;
    }
    return this.rejection;
  }

  private ttlSeconds(): number {
    if (this.rejection || !this.terms) return 0;
    if (this.terms.expiresAt === null) return Infinity;
    return Math.max(0, Math.round((this.terms.expiresAt - Date.now()) / 1000));
  }

  private async read(): Promise<string | undefined> {
    if (!this.options.tokenFile) return this.options.token;
    try {
      return (await readFile(this.options.tokenFile, 'utf8')).trim() || undefined;
    } catch (error) {
      this.options.logger.warn(
        { file: this.options.tokenFile, err: (error as NodeJS.ErrnoException).code },
        'could not read the OpenBao token file',
      );
      return undefined;
    }
  }

  /** Adopts a new token from the file, if there is one. */
  private async reload(): Promise<boolean> {
    if (this.stopped || !this.options.tokenFile) return false;
    const token = await this.read();
    if (!token || token === this.current) return false;
    this.current = token;
    this.terms = undefined;
    this.rejection = undefined;
    this.renewalRefused = false;
    this.options.metrics?.reloads.inc();
    this.options.logger.info({ file: this.options.tokenFile }, 'OpenBao token file changed; using the new token');
    await this.check();
    return true;
  }

  private schedule(delayMs: number, run: () => Promise<unknown>): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void run(), Math.min(delayMs, MAX_TIMER_MS));
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const token = this.current;
    try {
      const info = await this.options.base.withToken(token).lookupSelf();
      if (token !== this.current) return;
      this.accept(info.ttlSeconds, info.renewable, info.creationTtlSeconds, info.expireTime);
    } catch (error) {
      if (token !== this.current) return;
      if (isOpenBaoError(error, 'denied')) this.reject();
      else {
        this.options.logger.warn(
          { err: isOpenBaoError(error) ? error.kind : 'error' },
          'could not look up the OpenBao token; trying again',
        );
        this.schedule(RETRY_MS, () => this.check());
      }
    } finally {
      this.checkedAt = Date.now();
    }
  }

  /** `expireTime`: OpenBao's own expiry when it gave one (tokenExpiry). */
  private accept(ttlSeconds: number, renewable: boolean, requestSeconds: number, expireTime?: string | null): void {
    if (this.rejection) this.options.logger.info('OpenBao accepts the token again');
    this.rejection = undefined;
    this.renewalRefused = false;
    const now = Date.now();
    const expiresAt = tokenExpiry({ ttlSeconds, expireTime, now });
    this.terms = { expiresAt, renewable, requestSeconds };
    this.options.metrics?.valid.set(1);
    if (expiresAt === null) return;
    const leftMs = Math.max(0, expiresAt - now);
    if (renewable) this.schedule(renewalDelayMs(leftMs / 1000) ?? 1_000, () => this.renew());
    else {
      this.options.logger.warn(
        { ttlSeconds },
        `the OpenBao token is not renewable: replace it in ${this.options.replace} before it expires`,
      );
      // Look again when it has expired, so conditions and metrics say so before a call fails.
      this.schedule(leftMs + 1_000, () => this.check());
    }
  }

  private reject(): void {
    const why = rejectionReason({
      expiresAt: this.terms?.expiresAt,
      renewalRefused: this.renewalRefused,
      now: Date.now(),
    });
    if (!this.rejection)
      this.options.logger.error(
        { why },
        `OpenBao refused the controller's token: put a valid one into ${this.options.replace}`,
      );
    this.rejection = { why, replace: this.options.replace };
    this.options.metrics?.valid.set(0);
    if (this.timer) clearTimeout(this.timer);
  }

  private async renew(): Promise<void> {
    const token = this.current;
    const requested = this.terms?.requestSeconds ?? 0;
    try {
      const auth = await this.options.base.withToken(token).renewSelf(requested || undefined);
      if (token !== this.current) return;
      const capped = renewalCapped(auth.leaseDurationSeconds, requested);
      this.options.metrics?.renewals.inc({ result: capped ? 'capped' : 'ok' });
      if (capped) {
        // Renewing again cannot help: use it until it expires, then it is refused and says so.
        this.options.logger.warn(
          { ttlSeconds: auth.leaseDurationSeconds },
          `the OpenBao token reached its max TTL: replace it in ${this.options.replace}`,
        );
        this.terms = {
          expiresAt: Date.now() + auth.leaseDurationSeconds * 1000,
          renewable: false,
          requestSeconds: requested,
        };
        this.schedule(auth.leaseDurationSeconds * 1000 + 1_000, () => this.check());
        return;
      }
      this.accept(auth.leaseDurationSeconds, auth.renewable, requested);
    } catch (error) {
      if (token !== this.current) return;
      const refused = isOpenBaoError(error, 'denied');
      this.options.metrics?.renewals.inc({ result: refused ? 'refused' : 'error' });
      if (refused) {
        this.renewalRefused = true;
        if (!(await this.reload())) this.reject();
        return;
      }
      this.options.logger.warn(
        { err: isOpenBaoError(error) ? error.kind : 'error' },
        'OpenBao token renewal failed; trying again',
      );
      this.schedule(RETRY_MS, () => this.renew());
    }
  }
}

/**
 * The keeper a controller configures from its environment: OPENBAO_TOKEN_FILE (re-read; the
 * chart mounts a Secret there) or OPENBAO_TOKEN (fixed), and OPENBAO_TOKEN_SECRET naming the
 * Secret for messages. Throws when neither token setting is present.
 */
export function tokenKeeperFromEnv(
  env: Record<string, string | undefined>,
  deps: { base: OpenBaoClient; logger: Logger; registry: Registry; checkEveryMs?: number },
): TokenKeeper {
  if (!env.OPENBAO_TOKEN && !env.OPENBAO_TOKEN_FILE) throw new Error('set OPENBAO_TOKEN_FILE (or OPENBAO_TOKEN)');
  return new TokenKeeper({
    base: deps.base,
    token: env.OPENBAO_TOKEN || undefined,
    tokenFile: env.OPENBAO_TOKEN ? undefined : env.OPENBAO_TOKEN_FILE,
    replace: tokenSourceHint(env),
    logger: deps.logger,
    metrics: openBaoTokenMetrics(deps.registry),
    ...(deps.checkEveryMs ? { checkEveryMs: deps.checkEveryMs } : {}),
  });
}
