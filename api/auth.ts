/**
 * Bearer-token auth for /v1 (and /metrics) when AGENTQ_API_TOKENS is set;
 * the constant-time comparison is shared/bearer-token.ts. A token from
 * AGENTQ_API_READ_TOKENS reads (GET, HEAD) and nothing else: any other method
 * is a 403 `forbidden`. The access a request was granted is `c.get('access')`
 * (GET /v1/me tells it to the dashboard, which hides what it cannot do).
 */
import type { MiddlewareHandler } from 'hono';
import { bearerTokenCheck } from '../shared/bearer-token.ts';
import { ApiError } from './errors.ts';

/** What a request may do: everything, or read only. */
export type Access = 'write' | 'read';

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by bearerAuth; unset on an open API (no tokens), which grants `write`. */
    access: Access;
  }
}

const READ_METHODS = new Set(['GET', 'HEAD']);

export function bearerAuth(
  tokens: readonly string[],
  readTokens: readonly string[] = [],
): MiddlewareHandler {
  const full = bearerTokenCheck(tokens);
  const read = bearerTokenCheck(readTokens);
  return async (c, next) => {
    const header = c.req.header('authorization');
    // Both checks run every time, so timing does not tell which list matched.
    const isFull = full(header);
    const isRead = read(header);
    if (!isFull && !isRead) {
      c.header('WWW-Authenticate', 'Bearer realm="agentq"');
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
    }
    const access: Access = isFull ? 'write' : 'read';
    if (access === 'read' && !READ_METHODS.has(c.req.method)) {
      throw new ApiError(
        403,
        'forbidden',
        'this token is read-only: it may list, read and stream, but not submit, cancel or change anything',
      );
    }
    c.set('access', access);
    await next();
  };
}
