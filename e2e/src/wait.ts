/**
 * Polls `check` until it returns a value other than undefined, null or false, or fails with `what`.
 * null is "not yet" too: a `getOrNull` of an object still to be made must wait for it, not return
 * its absence (attack 04 failed on exactly that when a refusal came before the TCP it then read).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? `: last error: ${(lastError as Error).message ?? lastError}` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? 60_000} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 250));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
