// Durations as users write them in CR specs. Two grammars: the KdcCluster rotation interval
// (units d, h, m, s only, SPEC 3.1) and the KMSKey rotation interval, which also takes the
// sub-second units Go's time.ParseDuration knows (kube-dc's published pattern).

const UNIT_SECONDS: Record<string, number> = {
  d: 86_400,
  h: 3_600,
  m: 60,
  s: 1,
  ms: 1e-3,
  us: 1e-6,
  ns: 1e-9,
};

export const CLUSTER_INTERVAL_UNITS = ['d', 'h', 'm', 's'] as const;
export const KMSKEY_INTERVAL_UNITS = ['d', 'h', 'm', 's', 'ms', 'us', 'ns'] as const;

export type DurationResult = { ok: true; seconds: number } | { ok: false; error: string };

/**
 * Parses `1d12h`, `90d`, `45s`, `1h30m`. Each unit may appear once, largest first, amounts are
 * non-negative integers. The error says what to write instead.
 */
export function parseDuration(input: string, units: readonly string[] = CLUSTER_INTERVAL_UNITS): DurationResult {
  const text = input.trim();
  const example = 'for example 90d, 36h or 1d12h';
  if (text === '')
    return { ok: false, error: `empty interval: write a number and a unit (${units.join(', ')}), ${example}` };
  // Letters are read greedily, so "100ms" is the unit "ms" (refused here), never "100m" + "s".
  const token = /(\d+)([a-zA-Z]+)/y;
  let seconds = 0;
  let position = 0;
  let lastUnitIndex = -1;
  while (position < text.length) {
    token.lastIndex = position;
    const match = token.exec(text);
    if (!match) {
      return {
        ok: false,
        error: `cannot read "${input}" as an interval: use a number followed by ${units.join(', ')} (${example})`,
      };
    }
    const unit = match[2]!;
    const unitIndex = units.indexOf(unit);
    if (unitIndex < 0)
      return { ok: false, error: `unit "${unit}" in "${input}" is not allowed: use ${units.join(', ')} (${example})` };
    if (unitIndex <= lastUnitIndex) {
      return {
        ok: false,
        error: `"${input}" repeats a unit or puts a smaller unit first: write units once, largest first (${example})`,
      };
    }
    lastUnitIndex = unitIndex;
    seconds += Number(match[1]) * UNIT_SECONDS[unit]!;
    position = token.lastIndex;
  }
  return { ok: true, seconds };
}

export function parseKmsKeyInterval(input: string): DurationResult {
  return parseDuration(input, KMSKEY_INTERVAL_UNITS);
}

export const DAY_SECONDS = 86_400;

/** Renders seconds as the shortest `d h m s` string, for messages. */
export function formatDuration(totalSeconds: number): string {
  let rest = Math.round(totalSeconds);
  if (rest === 0) return '0s';
  let out = '';
  for (const unit of CLUSTER_INTERVAL_UNITS) {
    const size = UNIT_SECONDS[unit]!;
    const amount = Math.floor(rest / size);
    if (amount > 0) {
      out += `${amount}${unit}`;
      rest -= amount * size;
    }
  }
  return out;
}
