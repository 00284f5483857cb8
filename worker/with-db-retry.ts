/**
 * Retries a database write through a dropped connection (pg_terminate_backend,
 * a Postgres restart): the pool replaces the client, so a few tries with
 * backoff ride out the blip. Only connection-class errors are retried; a
 * statement's own error is thrown at once.
 */
import { isConnectionError } from '../shared/db/connection-errors.ts';

export async function withDbRetry<T>(
  fn: () => Promise<T>,
  signal?: AbortSignal,
  tries = 8,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries || !isConnectionError(err) || signal?.aborted) throw err;
      const delay = Math.min(100 * 2 ** (i - 1), 3000);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
