/**
 * Postgres errors that can reach a route, mapped to HTTP. Anything not listed
 * is a bug and becomes a logged 500.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ApiErrorCode } from './errors.ts';
import { isConnectionError } from '../shared/db/connection-errors.ts';

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
  '22P05': {
    status: 400,
    code: 'invalid_request',
    message: 'a string contains a character Postgres cannot store',
  },
  // invalid_catalog_name / invalid_password / invalid_authorization_specification: the
  // database was dropped or the credentials changed; for a client, the database is gone
  '3D000': {
    status: 503,
    code: 'database_unavailable',
    message: 'the database is unavailable; retry',
  },
  '28P01': {
    status: 503,
    code: 'database_unavailable',
    message: 'the database is unavailable; retry',
  },
  '28000': {
    status: 503,
    code: 'database_unavailable',
    message: 'the database is unavailable; retry',
  },
  // too_many_connections: say so, it is the one connection error an operator can act on
  '53300': {
    status: 503,
    code: 'database_unavailable',
    message: 'the database is out of connections; retry',
  },
};

export function httpErrorFromPg(err: unknown): Mapped | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code in BY_SQLSTATE) return BY_SQLSTATE[code];
  // Postgres restarting or gone, a backend killed, a socket dropped: retry later
  // (errors.ts adds Retry-After). The cause (host, port, database) stays in the log.
  if (isConnectionError(err))
    return {
      status: 503,
      code: 'database_unavailable',
      message: 'the database is unavailable; retry',
    };
  return undefined;
}
