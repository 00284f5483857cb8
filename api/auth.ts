/**
 * Bearer-token auth for /v1 (and /metrics) when AGENTQ_API_TOKENS is set;
 * the constant-time comparison is shared/bearer-token.ts.
 */
import type { MiddlewareHandler } from 'hono';
import { bearerTokenCheck } from '../shared/bearer-token.ts';
import { ApiError } from './errors.ts';

export function bearerAuth(tokens: readonly string[]): MiddlewareHandler {
  const check = bearerTokenCheck(tokens);
  return async (c, next) => {
    if (!check(c.req.header('authorization'))) {
      c.header('WWW-Authenticate', 'Bearer realm="agentq"');
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
    }
    await next();
  };
}
