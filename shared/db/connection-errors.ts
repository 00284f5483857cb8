/**
 * Is this error the connection (not the statement)? Postgres restarting or a
 * backend killed (SQLSTATE class 08, 57P01–57P03, 53300), or node-postgres
 * reporting a dropped socket or a pool timeout without a SQLSTATE. Such an
 * error says nothing about the query: the same statement may succeed on the
 * next connection.
 */
const CONNECTION_CODES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '53300', // too_many_connections
  'ECONNREFUSED',
  'ECONNRESET',
]);

const CONNECTION_MESSAGES =
  /Connection terminated|connection error|timeout exceeded when trying to connect|Client has encountered|ECONNREFUSED|ECONNRESET/i;

export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  return CONNECTION_MESSAGES.test(String(e?.message ?? ''));
}
