import type { Logger } from 'pino';
import { isConflict, isNotFound, type KubeClient, type KubeObject, type ResourceRef } from './kube.ts';

// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: acquire when the
// lease is free or expired, renew every retryPeriod, give up leadership when renewals fail for
// renewDeadline, and release on shutdown so a successor does not wait a whole lease.

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

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Pure decision: may `identity` take or keep the lease at `now`? */
export function canAcquire(spec: LeaseRecord | undefined, identity: string, now: Date): boolean {
  if (!spec || !spec.holderIdentity) return true;
  if (spec.holderIdentity === identity) return true;
  const renewed = spec.renewTime ? Date.parse(spec.renewTime) : 0;
  return renewed + (spec.leaseDurationSeconds ?? 15) * 1000 < now.getTime();
}

interface LeaseObject extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: LeaseRecord;
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly options: Required<Omit<LeaderElectionOptions, 'logger'>> & { logger?: Logger };
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;

  constructor(client: KubeClient, options: LeaderElectionOptions) {
    this.client = client;
    this.options = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2, ...options };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get ref(): ResourceRef {
    return { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: this.options.namespace, name: this.options.name };
  }

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.options.retryPeriodSeconds * 1000);
  }

  private async tick(): Promise<void> {
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.options.logger?.info({ lease: this.options.name, identity: this.options.identity }, 'became leader');
          this.options.onStartedLeading();
        }
      } else if (this.leading) {
        this.lose('lease taken by another holder');
      }
    } catch (error) {
      this.options.logger?.warn({ lease: this.options.name, err: (error as Error).message }, 'lease update failed');
      if (this.leading && Date.now() - this.lastRenew > this.options.renewDeadlineSeconds * 1000) this.lose('could not renew before the renew deadline');
    }
    this.schedule();
  }

  private lose(why: string): void {
    this.leading = false;
    this.options.logger?.warn({ lease: this.options.name, why }, 'lost leadership');
    this.options.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = new Date();
    const { identity, leaseDurationSeconds } = this.options;
    let lease: LeaseObject | null = null;
    try {
      lease = await this.client.get<LeaseObject>(this.ref);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!lease) {
      try {
        await this.client.create(this.ref, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.name, namespace: this.options.namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        });
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    if (!canAcquire(lease.spec, identity, now)) return false;
    const takingOver = lease.spec.holderIdentity !== identity;
    const spec: LeaseRecord = {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: takingOver ? microTime(now) : lease.spec.acquireTime ?? microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
    };
    try {
      await this.client.replace(this.ref, { ...lease, spec });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  /** Stops renewing; if leading, hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.client.get<LeaseObject>(this.ref);
      if (lease.spec.holderIdentity === this.options.identity) {
        await this.client.replace(this.ref, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(new Date()) } });
      }
    } catch {
      // best effort: the lease expires on its own
    }
  }
}
