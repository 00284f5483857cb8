/**
 * The guard of an open API (no AGENTQ_API_TOKENS). Loopback binding stops
 * other machines, but not a browser on this one: a page on any site can POST
 * to http://127.0.0.1:8080 (a cross-site form needs no preflight), and DNS
 * rebinding lets a page at attacker.example read from it under its own name.
 * So, without tokens, every request must name a loopback Host (localhost,
 * 127.0.0.0/8 or [::1], on the port the server listens on) — 403
 * forbidden_host — and must not come from a foreign page: an Origin that is
 * not such a loopback origin, or `Sec-Fetch-Site: cross-site`, is a 403
 * forbidden_origin. With tokens, a browser cannot attach the bearer token to
 * a cross-site request on its own, so the guard is not needed.
 */
import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors.ts';
import { isLoopbackHost } from '../shared/loopback.ts';

/** `port` gives the port the server listens on, once known; undefined skips the port check. */
export function localGuard(port: () => number | undefined): MiddlewareHandler {
  const isLocal = (url: URL) => {
    const expected = port();
    const actual = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return isLoopbackHost(url.hostname) && (expected === undefined || actual === expected);
  };
  return async (c, next) => {
    // node-server builds the request URL from the Host header (or the bound address without one).
    if (!isLocal(new URL(c.req.url))) {
      throw new ApiError(
        403,
        'forbidden_host',
        'this API has no tokens and answers only to localhost, 127.0.0.1 or [::1] as Host',
      );
    }
    const origin = c.req.header('origin');
    if (origin !== undefined && !isLocalOrigin(origin, isLocal)) {
      throw new ApiError(403, 'forbidden_origin', 'cross-site requests are refused');
    }
    if (c.req.header('sec-fetch-site') === 'cross-site') {
      throw new ApiError(403, 'forbidden_origin', 'cross-site requests are refused');
    }
    await next();
  };
}

function isLocalOrigin(origin: string, isLocal: (url: URL) => boolean): boolean {
  try {
    const url = new URL(origin); // `null` (sandboxed frames, file:) does not parse
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLocal(url);
  } catch {
    return false;
  }
}
