/**
 * The list cursor: opaque to clients (base64url JSON), carrying the id of the
 * last task on the page. A cursor that does not decode is a 400, not a 500.
 */
import { ApiError } from '../errors.ts';
import { UUID_RE } from './task-id.ts';

export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, id: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  try {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new Error('not base64url');
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      (parsed as { v?: unknown }).v === 1 &&
      typeof (parsed as { id?: unknown }).id === 'string' &&
      UUID_RE.test((parsed as { id: string }).id)
    ) {
      return (parsed as { id: string }).id;
    }
  } catch {
    // fall through to the 400
  }
  throw new ApiError(400, 'invalid_cursor', 'cursor is not one this API returned');
}
