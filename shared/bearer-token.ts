/**
 * The bearer-token check shared by the API (/v1 and /metrics) and the
 * worker's metrics listener. Tokens are compared in constant time, over
 * SHA-256 digests, so neither timing nor length tells which one matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A check of an `Authorization` header against `tokens`. */
export function bearerTokenCheck(
  tokens: readonly string[],
): (header: string | undefined) => boolean {
  const expected = tokens.map(digest);
  return (header) => {
    const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
    const given = digest(match?.[1]?.trim() ?? '');
    // Compare against every token (no early exit) so timing does not tell which matched.
    let ok = false;
    for (const token of expected) ok = timingSafeEqual(token, given) || ok;
    return ok && match !== null;
  };
}
