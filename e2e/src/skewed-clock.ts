// Preloaded with `node --import` into a test process whose wall clock must be wrong: Date (and
// everything built on it) runs KDC_CLOCK_SKEW_MS ahead (negative: behind), while the monotonic
// clock (performance.now) and TLS certificate checks keep real time, as on a host whose NTP is off.
const skewMs = Number(process.env.KDC_CLOCK_SKEW_MS ?? 0);
const RealDate = Date;

class SkewedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(RealDate.now() + skewMs);
    else super(...(args as [string]));
  }

  static override now(): number {
    return RealDate.now() + skewMs;
  }
}

globalThis.Date = SkewedDate as DateConstructor;
