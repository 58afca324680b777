import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { isConflict, isNotFound, resourcePath, type KubeClient, type KubeObject, type ResourceRef } from './kube.ts';
import { at, RESOURCES } from './resources.ts';

// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics. Timestamps in the
// Lease were written by another machine's clock, so they are never compared with ours: a
// candidate measures expiry on its own monotonic clock from the moment it last saw the record
// change. A leader counts its renew deadline from when it SENT its last successful renewal, every
// Lease call ends before that deadline, and a watchdog stops leading when it passes, even while a
// call hangs. With renewDeadline < leaseDuration, the old leader has stopped before anyone may
// take over, whatever the clocks say (only their rates must roughly agree).

export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  logger?: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

export interface LeaderTimings {
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
}

/** Where a Lease lives: what the elector writes and what a check (k8-manager check-leases) reads. */
export const leaseRef = (namespace: string, name: string) => at(RESOURCES.lease, namespace, name);

/** client-go's jitter on a candidate's retry period, so standbys do not poll in lockstep. */
export const JITTER_FACTOR = 1.2;

/** The same rules client-go enforces; a violation would let two instances lead at once. */
export function validateLeaderTimings(t: LeaderTimings): string[] {
  const errors: string[] = [];
  for (const [name, value] of Object.entries(t)) if (!(value > 0)) errors.push(`${name} must be greater than zero`);
  if (t.leaseDurationSeconds <= t.renewDeadlineSeconds)
    errors.push('leaseDurationSeconds must be greater than renewDeadlineSeconds');
  if (t.renewDeadlineSeconds <= JITTER_FACTOR * t.retryPeriodSeconds)
    errors.push(`renewDeadlineSeconds must be greater than retryPeriodSeconds * ${JITTER_FACTOR}`);
  return errors;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** What this candidate last saw of the Lease, and when, on its own monotonic clock. */
export interface Observation {
  /** The record, canonically serialised: any change at all counts as a sign of life. */
  raw: string;
  record: LeaseRecord;
  /** Monotonic milliseconds when this candidate first saw `raw`. */
  observedAt: number;
}

/** Pure: the observation after reading `record` at `now`; the clock restarts only when the record changed. */
export function observe(previous: Observation | undefined, record: LeaseRecord, now: number): Observation {
  const r = record;
  const raw = JSON.stringify([
    r.holderIdentity ?? '',
    r.leaseDurationSeconds ?? null,
    r.acquireTime ?? null,
    r.renewTime ?? null,
    r.leaseTransitions ?? 0,
  ]);
  return previous?.raw === raw ? previous : { raw, record, observedAt: now };
}

export type LeaseDecision =
  | { kind: 'renew' }
  | { kind: 'acquire'; why: 'released' | 'expired' }
  | { kind: 'wait'; holder: string; expiresInMs: number };

/**
 * Pure: what `identity` may do with the Lease it observed. A lease held by someone else expires
 * its own leaseDurationSeconds after this candidate last saw it change; renewTime is not read.
 */
export function decide(
  observation: Observation,
  identity: string,
  now: number,
  defaultLeaseSeconds: number,
): LeaseDecision {
  const holder = observation.record.holderIdentity ?? '';
  if (holder === identity) return { kind: 'renew' };
  if (!holder) return { kind: 'acquire', why: 'released' };
  const leaseMs = (observation.record.leaseDurationSeconds || defaultLeaseSeconds) * 1000;
  const expiresInMs = observation.observedAt + leaseMs - now;
  return expiresInMs <= 0 ? { kind: 'acquire', why: 'expired' } : { kind: 'wait', holder, expiresInMs };
}

/**
 * Pure: how long one Lease call may take, in whole milliseconds (AbortSignal.timeout refuses
 * fractions). A leader's call must end by its renew deadline (counted from the send time of its
 * last successful renewal); a candidate's within one renew deadline.
 */
export function callBudgetMs(input: {
  leading: boolean;
  renewedAt: number;
  now: number;
  renewDeadlineMs: number;
}): number {
  if (!input.leading) return Math.floor(input.renewDeadlineMs);
  return Math.max(0, Math.floor(input.renewedAt + input.renewDeadlineMs - input.now));
}

/**
 * Pure: whether a write sent at `sentAt` that succeeded at `now` may start (or continue) a term.
 * An answer that took longer than the renew deadline proves nothing any more: others may have
 * seen the write long before we did and be about to count it out.
 */
export function writeStillFresh(sentAt: number, now: number, renewDeadlineMs: number): boolean {
  return now - sentAt < renewDeadlineMs;
}

interface LeaseObject extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseRecord;
}

type Clock = { monotonic: () => number; wall: () => Date };
const REAL_CLOCK: Clock = { monotonic: () => performance.now(), wall: () => new Date() };

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly options: Required<Omit<LeaderElectionOptions, 'logger'>> & { logger?: Logger };
  private readonly clock: Clock;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Monotonic send time of our last successful write of the Lease. */
  private renewedAt = 0;
  private observation: Observation | undefined;
  /** The Lease as our last successful write left it: the next renewal tries it without a GET. */
  private written: LeaseObject | undefined;

  constructor(client: KubeClient, options: LeaderElectionOptions, clock: Clock = REAL_CLOCK) {
    this.client = client;
    this.options = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2, ...options };
    this.clock = clock;
    const { leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds } = this.options;
    const errors = validateLeaderTimings({ leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds });
    if (errors.length) throw new Error(`leader election for ${options.name}: ${errors.join('; ')}`);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get ref(): ResourceRef {
    return leaseRef(this.options.namespace, this.options.name);
  }

  private get renewDeadlineMs(): number {
    return this.options.renewDeadlineSeconds * 1000;
  }

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    const retryMs = this.options.retryPeriodSeconds * 1000;
    const delay = this.leading ? retryMs : retryMs * (1 + Math.random() * (JITTER_FACTOR - 1));
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    const sentAt = this.clock.monotonic();
    const budget = callBudgetMs({
      leading: this.leading,
      renewedAt: this.renewedAt,
      now: sentAt,
      renewDeadlineMs: this.renewDeadlineMs,
    });
    try {
      // AbortSignal.timeout takes whole milliseconds only (it throws on 7980.9).
      const held = budget >= 1 && (await this.tryAcquireOrRenew(AbortSignal.timeout(Math.floor(budget))));
      if (this.stopped) return;
      if (held && writeStillFresh(sentAt, this.clock.monotonic(), this.renewDeadlineMs)) {
        this.renewedAt = sentAt;
        this.armWatchdog();
        if (!this.leading) {
          this.leading = true;
          this.options.logger?.info({ lease: this.options.name, identity: this.options.identity }, 'became leader');
          this.options.onStartedLeading();
        }
      } else if (this.leading && !held && this.observation?.record.holderIdentity !== this.options.identity) {
        this.lose(`lease taken by ${this.observation?.record.holderIdentity || 'nobody'}`);
      }
    } catch (error) {
      this.options.logger?.warn({ lease: this.options.name, err: (error as Error).message }, 'lease update failed');
    }
    this.schedule();
  }

  /** Stops leading when the renew deadline passes without a renewal, even while a call still hangs. */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    const remaining = this.renewedAt + this.renewDeadlineMs - this.clock.monotonic();
    this.watchdog = setTimeout(
      () => {
        if (this.leading)
          this.lose(`could not renew within the renew deadline (${this.options.renewDeadlineSeconds}s)`);
      },
      Math.max(0, remaining),
    );
  }

  private lose(why: string): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.leading = false;
    this.written = undefined;
    this.options.logger?.warn({ lease: this.options.name, why }, 'lost leadership');
    this.options.onStoppedLeading();
  }

  private spec(now: Date, previous: LeaseRecord | undefined, takingOver: boolean): LeaseRecord {
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: this.options.leaseDurationSeconds,
      acquireTime: takingOver || !previous?.acquireTime ? microTime(now) : previous.acquireTime,
      renewTime: microTime(now),
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (takingOver && previous ? 1 : 0),
    };
  }

  private async write(method: 'POST' | 'PUT', body: LeaseObject, signal: AbortSignal): Promise<true> {
    const path = resourcePath(method === 'POST' ? { ...this.ref, name: undefined } : this.ref);
    this.written = await this.client.request<LeaseObject>(method, path, { body, signal });
    this.observation = observe(this.observation, this.written.spec, this.clock.monotonic());
    return true;
  }

  /** True when a write of ours (sent after the tick began) now holds the Lease. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = this.clock.wall();
    // Fast path, as client-go: a leader renews on top of its own last write, one call; any
    // conflict means someone else wrote, and the slow path looks.
    if (this.leading && this.written) {
      try {
        return await this.write('PUT', { ...this.written, spec: this.spec(now, this.written.spec, false) }, signal);
      } catch (e) {
        if (!isConflict(e)) throw e;
        this.written = undefined;
      }
    }
    let lease: LeaseObject | null = null;
    try {
      lease = await this.client.request<LeaseObject>('GET', resourcePath(this.ref), { signal });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!lease) {
      const body = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.options.name, namespace: this.options.namespace },
        spec: this.spec(now, undefined, true),
      };
      try {
        return await this.write('POST', body, signal);
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    // Observed when the answer arrived: the later, the longer a holder is given.
    const seenAt = this.clock.monotonic();
    this.observation = observe(this.observation, lease.spec ?? {}, seenAt);
    const decision = decide(this.observation, this.options.identity, seenAt, this.options.leaseDurationSeconds);
    if (decision.kind === 'wait') return false;
    try {
      return await this.write(
        'PUT',
        { ...lease, spec: this.spec(now, lease.spec, decision.kind === 'acquire') },
        signal,
      );
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  /** Stops renewing; if leading, hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) clearTimeout(this.watchdog);
    if (!this.leading) return;
    this.leading = false;
    try {
      const signal = AbortSignal.timeout(this.renewDeadlineMs);
      const lease = await this.client.request<LeaseObject>('GET', resourcePath(this.ref), { signal });
      if (lease.spec.holderIdentity !== this.options.identity) return;
      // Conditional on the resourceVersion just read: a successor's write is never overwritten.
      const spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: microTime(this.clock.wall()),
      };
      await this.client.request('PUT', resourcePath(this.ref), { body: { ...lease, spec }, signal });
    } catch {
      // best effort: the lease expires on its own
    }
  }
}
