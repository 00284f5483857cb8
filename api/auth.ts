/**
 * Bearer-token auth for /v1 when AGENTQ_API_TOKENS is set. Tokens are compared
 * in constant time (over SHA-256 digests, so lengths leak nothing either).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function bearerAuth(tokens: readonly string[]): MiddlewareHandler {
  const expected = tokens.map(digest);
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = digest(match?.[1]?.trim() ?? '');
    // Compare against every token (no early exit) so timing does not tell which matched.
    let ok = false;
    for (const token of expected) ok = timingSafeEqual(token, given) || ok;
    if (!ok || !match) {
      c.header('WWW-Authenticate', 'Bearer realm="agentq"');
      throw new ApiError(401, 'unauthorized', 'a valid bearer token is required');
    }
    await next();
  };
}
