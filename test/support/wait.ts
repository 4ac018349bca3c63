/**
 * Polls `probe` every `intervalMs` until it returns a value other than undefined (a probe that throws
 * counts as not yet). On timeout it throws with `what`, the last error, and `context()` (a log tail).
 * The timer between polls keeps the event loop alive, so a test waiting on an unref'd child cannot end
 * early.
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
  options: { intervalMs?: number; context?: () => string; abortIf?: () => string | undefined } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new Error(`${abort} while waiting for ${what}${suffix(options.context)}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const last = lastError === undefined ? '' : ` (last error: ${String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${suffix(options.context)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
  }
}

function suffix(context: (() => string) | undefined): string {
  return context === undefined ? '' : `\n${context()}`;
}
