import { readFile } from 'node:fs/promises';
import { MAX_TIMER_MS, isOpenBaoError, type AuthResult, type Logger, type OpenBaoClient } from '@kdc/shared';
import type { PluginConfig } from '../config.ts';
import type { PluginMetrics } from '../metrics.ts';

/**
 * The plugin's OpenBao identity: logs in on demand (one login at a time), renews at two thirds
 * of the TTL, logs in again when a call is refused with 401/403 or renewal stops extending the
 * token, and backs off between failed logins so a wrong role never becomes a request storm.
 */
export class OpenBaoSession {
  private readonly base: OpenBaoClient;
  private readonly auth: PluginConfig['auth'];
  private readonly logger: Logger;
  private readonly metrics: PluginMetrics;
  private authed: OpenBaoClient | undefined;
  private pending: Promise<OpenBaoClient> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastLoginError: Error | undefined;
  private stopped = false;

  constructor(base: OpenBaoClient, auth: PluginConfig['auth'], logger: Logger, metrics: PluginMetrics) {
    this.base = base;
    this.auth = auth;
    this.logger = logger;
    this.metrics = metrics;
  }

  /** A client carrying a valid token; logs in if there is none. */
  client(): Promise<OpenBaoClient> {
    if (this.authed) return Promise.resolve(this.authed);
    if (Date.now() < this.retryAt) {
      return Promise.reject(new LoginBackoffError(this.retryAt - Date.now(), this.lastLoginError));
    }
    this.pending ??= this.login().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Runs `fn` with a token; on 401/403 drops the token, logs in again once and retries. */
  async call<T>(fn: (client: OpenBaoClient) => Promise<T>): Promise<T> {
    const client = await this.client();
    try {
      return await fn(client);
    } catch (error) {
      if (!isOpenBaoError(error, 'denied') || error.status === 0) throw error;
      if (this.authed === client) this.invalidate('a request was refused with ' + error.status);
      return fn(await this.client());
    }
  }

  private invalidate(why: string): void {
    if (!this.authed) return;
    this.logger.warn({ why }, 'OpenBao token dropped; logging in again');
    this.authed = undefined;
    if (this.renewTimer) clearTimeout(this.renewTimer);
  }

  private describe(): { mount: string; role: string } {
    switch (this.auth.method) {
      case 'kubernetes':
        return { mount: this.auth.mount, role: this.auth.role };
      case 'approle':
        return { mount: this.auth.mount, role: this.auth.roleId };
      case 'userpass':
        return { mount: this.auth.mount, role: this.auth.username };
      case 'token':
        return { mount: 'token', role: '-' };
    }
  }

  private async obtain(): Promise<{ client: OpenBaoClient; ttlSeconds: number; renewable: boolean }> {
    const auth = this.auth;
    let result: AuthResult;
    switch (auth.method) {
      case 'kubernetes': {
        // kubelet rotates the projected token: read it afresh at every login.
        const jwt = (await readFile(auth.tokenFile, 'utf8')).trim();
        result = await this.base.loginKubernetes(auth.mount, auth.role, jwt);
        break;
      }
      case 'approle':
        result = await this.base.loginAppRole(
          auth.mount,
          auth.roleId,
          (await readFile(auth.secretIdFile, 'utf8')).trim(),
        );
        break;
      case 'userpass':
        result = await this.base.loginUserpass(
          auth.mount,
          auth.username,
          (await readFile(auth.passwordFile, 'utf8')).trim(),
        );
        break;
      case 'token': {
        const token = auth.tokenFile ? (await readFile(auth.tokenFile, 'utf8')).trim() : auth.token!;
        const client = this.base.withToken(token);
        const info = await client.lookupSelf();
        return { client, ttlSeconds: info.ttlSeconds, renewable: info.renewable };
      }
    }
    return {
      client: this.base.withToken(result.clientToken),
      ttlSeconds: result.leaseDurationSeconds,
      renewable: result.renewable,
    };
  }

  private async login(): Promise<OpenBaoClient> {
    const { mount, role } = this.describe();
    const end = this.metrics.openBaoDuration.startTimer({ operation: 'login' });
    try {
      const { client, ttlSeconds, renewable } = await this.obtain();
      end();
      this.failures = 0;
      this.retryAt = 0;
      this.lastLoginError = undefined;
      this.authed = client;
      this.metrics.logins.inc({ result: 'ok' });
      this.metrics.tokenTtl.set(ttlSeconds);
      this.logger.info({ mount, role, ttlSeconds }, 'OpenBao login ok');
      this.scheduleRenewal(ttlSeconds, renewable, ttlSeconds);
      return client;
    } catch (error) {
      end();
      this.metrics.logins.inc({ result: 'error' });
      this.metrics.errors.inc({ class: isOpenBaoError(error, 'unavailable') ? 'openbao_unavailable' : 'auth_failed' });
      const status = isOpenBaoError(error) ? error.status : 0;
      if (status) this.logger.error(`OpenBao login (mount=${mount} role=${role}): ${status}`);
      else this.logger.error({ mount, role, err: (error as Error).message }, 'OpenBao login failed');
      const delay = Math.min(1000 * 2 ** this.failures, 60_000);
      this.failures++;
      this.retryAt = Date.now() + delay;
      this.lastLoginError = error as Error;
      throw error;
    }
  }

  private scheduleRenewal(ttlSeconds: number, renewable: boolean, originalTtl: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.stopped || ttlSeconds <= 0) return; // 0 = a token that never expires
    const client = this.authed;
    // Capped at setTimeout's limit (beyond it fires at once): renewing early is harmless.
    const inMs = Math.min(Math.max(1000, (ttlSeconds * 1000 * 2) / 3), MAX_TIMER_MS);
    this.renewTimer = setTimeout(() => void this.renew(client!, renewable, originalTtl), inMs);
    this.renewTimer.unref();
  }

  private async renew(client: OpenBaoClient, renewable: boolean, originalTtl: number): Promise<void> {
    if (this.authed !== client || this.stopped) return;
    if (!renewable) {
      this.invalidate('token is not renewable');
      await this.client().catch(() => undefined);
      return;
    }
    const end = this.metrics.openBaoDuration.startTimer({ operation: 'renew' });
    try {
      const renewed = await client.renewSelf(originalTtl);
      end();
      this.metrics.tokenTtl.set(renewed.leaseDurationSeconds);
      // A max TTL caps renewals: once a renewal no longer buys a third of the original TTL, log in again.
      if (renewed.leaseDurationSeconds < originalTtl / 3) {
        this.invalidate('renewal no longer extends the token');
        await this.client().catch(() => undefined);
        return;
      }
      this.scheduleRenewal(renewed.leaseDurationSeconds, renewed.renewable, originalTtl);
    } catch (error) {
      end();
      this.invalidate(`renewal failed (${isOpenBaoError(error) ? error.status : 'network'})`);
      await this.client().catch(() => undefined);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
  }
}

export class LoginBackoffError extends Error {
  constructor(retryInMs: number, cause: Error | undefined) {
    super(`OpenBao login is backing off for ${Math.ceil(retryInMs / 1000)}s after a failed login`, { cause });
    this.name = 'LoginBackoffError';
  }
}
