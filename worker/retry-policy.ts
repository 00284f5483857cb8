/**
 * How long a retryable failure waits before the next attempt: exponential
 * backoff from a base, with jitter so a burst of failures does not retry in
 * lockstep, never sooner than the provider's Retry-After, never longer than
 * the configured maximum (unless Retry-After asks for longer).
 */
export interface RetrySettings {
  baseMs: number;
  maxMs: number;
}

export function retryDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  settings: RetrySettings,
  random: () => number = Math.random,
): number {
  const exponential = settings.baseMs * 2 ** Math.max(0, attempt - 1);
  // ±20% jitter
  const jittered = Math.min(settings.maxMs, exponential) * (0.8 + 0.4 * random());
  const delay = Math.max(jittered, retryAfterMs ?? 0);
  return Math.round(Math.min(delay, Math.max(settings.maxMs, retryAfterMs ?? 0)));
}
