/** Task ids in paths: any RFC 4122 UUID text form; anything else is a 400 invalid_id. */
import { ApiError } from '../errors.ts';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseTaskId(id: string): string {
  if (!UUID_RE.test(id))
    throw new ApiError(400, 'invalid_id', `"${id.slice(0, 64)}" is not a task id (a UUID)`);
  return id.toLowerCase();
}
