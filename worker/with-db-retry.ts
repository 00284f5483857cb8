/**
 * Retries a database write through a dropped connection (pg_terminate_backend,
 * a Postgres restart): the pool replaces the client, so a few tries with
 * backoff ride out the blip. Only connection-class errors are retried; a
 * statement's own error is thrown at once.
 */
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', '53300', 'ECONNREFUSED', 'ECONNRESET']);

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  const message = String(e?.message ?? '');
  return /Connection terminated|connection error|timeout exceeded when trying to connect|Client has encountered/i.test(message);
}

export async function withDbRetry<T>(fn: () => Promise<T>, signal?: AbortSignal, tries = 8): Promise<T> {
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
