// Value checks every program shares, as zod schemas over the flag's or variable's text. Each issue
// message is the whole sentence after "--flag: " (or "NAME: "), quoting the value it refused.
import { z } from 'zod';
import { parseKmsKeyInterval } from '../duration.ts';
import { splitHostPort } from '../metrics.ts';
import { parseLabelSelector, type LabelSelector } from '../runtime/label-selector.ts';

const HTTP_URL = /^https?:\/\/[^/\s]+/;

/** An http(s) URL, without a trailing slash (how the programs store and compare it). */
export const httpUrl = z
  .string()
  .refine((v) => HTTP_URL.test(v), { error: (issue) => `"${String(issue.input)}" is not an http(s) URL` })
  .transform((v) => v.replace(/\/$/, ''));

/** `host:port`, `[v6]:port` or `v6:port`: splitHostPort's rule (the port after the last colon). */
export const hostPort = z.string().transform((value, ctx) => {
  try {
    return splitHostPort(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** A duration such as 30s, 10m, 7d, in milliseconds, at least `minSeconds` (default: above zero). */
export const durationMs = (minSeconds?: number, hint = '') =>
  z.string().transform((value, ctx) => {
    const parsed = parseKmsKeyInterval(value);
    const tooShort = parsed.ok && (minSeconds === undefined ? parsed.seconds <= 0 : parsed.seconds < minSeconds);
    if (!parsed.ok || tooShort) {
      ctx.addIssue({
        code: 'custom',
        message: !parsed.ok
          ? parsed.error
          : minSeconds === undefined
            ? 'must be greater than zero'
            : `"${value}" must be a duration of at least ${hint || `${minSeconds}s`}`,
      });
      return z.NEVER;
    }
    return Math.round(parsed.seconds * 1000);
  });

/** A whole number in min..max; `describe` phrases the refusal. */
export const integer = (min: number, max: number, describe?: (value: string) => string) =>
  z.string().transform((value, ctx) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: describe?.(value) ?? `"${value}" must be an integer in ${min}..${max}` });
      return z.NEVER;
    }
    return n;
  });

/**
 * Settings a controller reads from its environment (the chart sets them): each read checks its
 * value and throws one error naming the variable and the fix.
 */
export class EnvSettings {
  private readonly env: Record<string, string | undefined>;
  constructor(env: Record<string, string | undefined>) {
    this.env = env;
  }

  string(name: string, fallback: string): string {
    return this.env[name]?.trim() || fallback;
  }

  optional(name: string): string | undefined {
    return this.env[name]?.trim() || undefined;
  }

  required(name: string, hint: string): string {
    const value = this.optional(name);
    if (value === undefined) throw new Error(`${name} is not set: ${hint}`);
    return value;
  }

  /** minSeconds: the shortest accepted (default: anything above zero; 0 lets "0s" through). */
  durationMs(name: string, fallback: string, minSeconds?: number): number {
    return this.parse(name, durationMs(minSeconds), this.string(name, fallback));
  }

  durationSeconds(name: string, fallback: string): number {
    return this.durationMs(name, fallback) / 1000;
  }

  positiveInt(name: string, fallback: number): number {
    return this.parse(
      name,
      integer(1, Number.MAX_SAFE_INTEGER, (v) => `"${v}" is not a whole number above 0`),
      this.string(name, String(fallback)),
    );
  }

  /** A label selector (`shard=a`); undefined when unset. Throws naming the variable and the fix. */
  labelSelector(name: string): LabelSelector | undefined {
    const value = this.optional(name);
    if (value === undefined) return undefined;
    try {
      return parseLabelSelector(value);
    } catch (error) {
      throw new Error(`${name}: ${(error as Error).message}`);
    }
  }

  list(name: string, fallback: string): string[] {
    return this.string(name, fallback)
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean);
  }

  private parse<T>(name: string, schema: z.ZodType<T, string>, value: string): T {
    const result = schema.safeParse(value);
    if (!result.success) throw new Error(`${name}: ${result.error.issues[0]?.message ?? `"${value}" is not valid`}`);
    return result.data;
  }
}
