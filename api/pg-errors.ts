/**
 * Postgres errors that can reach a route, mapped to HTTP. Anything not listed
 * is a bug and becomes a logged 500.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ApiErrorCode } from './errors.ts';

interface Mapped {
  status: ContentfulStatusCode;
  code: ApiErrorCode;
  message: string;
}

const BY_SQLSTATE: Record<string, Mapped> = {
  // unique_violation: a concurrent insert took the same key between our check and write
  '23505': { status: 409, code: 'conflict', message: 'a conflicting row was written concurrently' },
  // check_violation: the status-machine trigger refused a transition that lost a race
  '23514': { status: 409, code: 'conflict', message: 'the task changed concurrently; retry' },
  // invalid_text_representation / untranslatable_character: input the API failed to screen
  '22P02': { status: 400, code: 'invalid_request', message: 'a value could not be stored' },
  '22P05': { status: 400, code: 'invalid_request', message: 'a string contains a character Postgres cannot store' },
  // admin_shutdown, crash_shutdown, cannot_connect_now: the database is restarting
  '57P01': { status: 503, code: 'unavailable', message: 'the database is restarting; retry' },
  '57P02': { status: 503, code: 'unavailable', message: 'the database is restarting; retry' },
  '57P03': { status: 503, code: 'unavailable', message: 'the database is starting; retry' },
  // connection_exception family
  '08000': { status: 503, code: 'unavailable', message: 'database connection lost; retry' },
  '08003': { status: 503, code: 'unavailable', message: 'database connection lost; retry' },
  '08006': { status: 503, code: 'unavailable', message: 'database connection lost; retry' },
  // too_many_connections
  '53300': { status: 503, code: 'unavailable', message: 'the database is out of connections; retry' },
};

// node-postgres reports a dropped socket or a pool timeout without a SQLSTATE.
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'ECONNREFUSED',
  'ECONNRESET',
  'Client has encountered a connection error',
];

export function httpErrorFromPg(err: unknown): Mapped | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code in BY_SQLSTATE) return BY_SQLSTATE[code];
  const message = String((err as { message?: unknown }).message ?? '');
  if (CONNECTION_MESSAGES.some((m) => message.includes(m)) || code === 'ECONNREFUSED') {
    return { status: 503, code: 'unavailable', message: 'database unavailable; retry' };
  }
  return undefined;
}
