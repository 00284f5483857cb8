/** The request body as JSON: 415 unless it says it is JSON, 400 unless it is. */
import type { Context } from 'hono';
import { ApiError } from '../errors.ts';

export async function readJsonBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
  }
  const text = await c.req.text();
  if (text.trim() === '') throw new ApiError(400, 'invalid_request', 'the request body is empty');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(
      400,
      'invalid_request',
      `the body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/**
 * For a POST that takes no body (cancel, rerun). A browser can send a
 * cross-site form POST without a preflight only as form-urlencoded, multipart
 * or text/plain: any body type but JSON is refused, so such a POST can never
 * act (the Origin check in local-guard.ts stops it first when the API is open).
 */
export function refuseFormBody(c: Context, what: string): void {
  const type = c.req.header('content-type');
  if (type !== undefined && !/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError(
      415,
      'unsupported_media_type',
      `${what} takes no body; send none, or application/json`,
    );
  }
}
