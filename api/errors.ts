/**
 * The API's one error shape, `{ error: { code, message, details? } }`, the
 * codes it can carry, and the single `onError` that renders every failure —
 * ours, Hono's, and Postgres's (through the SQLSTATE table in pg-errors.ts).
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from '../shared/logger.ts';
import { httpErrorFromPg } from './pg-errors.ts';

export type ApiErrorCode =
  | 'invalid_request'
  | 'invalid_id'
  | 'invalid_cursor'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'idempotency_conflict'
  | 'already_finished'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'conflict'
  | 'count_changed'
  | 'database_unavailable'
  | 'forbidden_host'
  | 'forbidden_origin'
  | 'too_many_streams'
  | 'internal_error';

/** Seconds a client is told to wait before retrying a 503 database_unavailable. */
export const DATABASE_RETRY_AFTER_S = 2;

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
    /** Extra response headers, e.g. Retry-After on a 429 or 503. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorBody(code: ApiErrorCode, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export function makeErrorHandler(logger: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) {
      for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
      return c.json(errorBody(err.code, err.message, err.details), err.status);
    }
    if (err instanceof HTTPException) {
      // Hono raises these for body limits and malformed bodies it parses itself.
      if (err.status === 413) {
        return c.json(errorBody('payload_too_large', 'request body is larger than the limit'), 413);
      }
      if (err.status === 401) {
        return c.json(errorBody('unauthorized', 'a valid bearer token is required'), 401);
      }
      return c.json(errorBody('invalid_request', err.message || 'bad request'), err.status);
    }
    const mapped = httpErrorFromPg(err);
    if (mapped) {
      if (mapped.status >= 500) {
        // The client learns only that it may retry; the cause stays in the log.
        logger.warn({ err, path: c.req.path }, 'database unavailable');
        c.header('Retry-After', String(DATABASE_RETRY_AFTER_S));
      }
      return c.json(errorBody(mapped.code, mapped.message), mapped.status);
    }
    logger.error({ err, path: c.req.path }, 'unhandled error');
    return c.json(errorBody('internal_error', 'internal error'), 500);
  };
}
