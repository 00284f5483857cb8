/** Task ids in paths: any RFC 4122 UUID text form; anything else is a 400 invalid_id. */
import * as v from 'valibot';
import { ApiError } from '../errors.ts';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseTaskId(id: string): string {
  if (!UUID_RE.test(id))
    throw new ApiError(400, 'invalid_id', `"${id.slice(0, 64)}" is not a task id (a UUID)`);
  return id.toLowerCase();
}

/** The `:id` path parameter, for the OpenAPI document (parseTaskId does the checking). */
export const TaskIdParams = v.strictObject({
  id: v.pipe(v.string(), v.uuid(), v.description('the task id (a UUID)')),
});
