// OpenBao has no watch: what a controller wrote there (a policy, a role, a Transit key) can only be
// checked by reading it back. Reading it back on every resync made a steady resync cost its reads
// (7 per tenant, ~2.6 core-seconds per 1,000 tenants). The drift clock remembers, per object, what
// was last verified, for which wanted state and when; a reconcile reads OpenBao again only when what
// it wants changed, when the period has passed, or after a restart (memory is empty: the first pass
// of a new leader checks everything). Crossplane's poll interval and ACK's drift-remediation period
// make the same trade.

export class DriftClock<T = true> {
  private readonly verified = new Map<string, { fingerprint: string; at: number; value: T }>();

  private readonly periodMs: number;
  private readonly now: () => number;
  private readonly trusted: () => boolean;

  /**
   * periodMs 0 checks on every reconcile (the behaviour before the clock). While `trusted` says no
   * (the controller's OpenBao token was refused, say), nothing is recalled: every reconcile reads,
   * and so says what OpenBao answers.
   */
  constructor(periodMs: number, options: { now?: () => number; trusted?: () => boolean } = {}) {
    this.periodMs = periodMs;
    this.now = options.now ?? Date.now;
    this.trusted = options.trusted ?? (() => true);
  }

  /** What was verified for `key` and this very `fingerprint` within the period; undefined: read again. */
  recall(key: string, fingerprint: string): T | undefined {
    const last = this.verified.get(key);
    return last !== undefined &&
      last.fingerprint === fingerprint &&
      this.now() - last.at < this.periodMs &&
      this.trusted()
      ? last.value
      : undefined;
  }

  /** OpenBao was read and holds (or now holds) `value`, what `fingerprint` stands for. */
  remember(key: string, fingerprint: string, value: T): void {
    this.verified.set(key, { fingerprint, at: this.now(), value });
  }

  forget(key: string): void {
    this.verified.delete(key);
  }
}
