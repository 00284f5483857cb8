/**
 * The filter fields shared by GET /v1/tasks, GET /v1/changes and POST
 * /v1/tasks/cancel, as query-string text (the bulk cancel takes the same
 * strings in its JSON body), and their reading into a TaskFilter. `q` is a
 * task id prefix when it looks like one, else text searched in the prompt.
 */
import * as v from 'valibot';
import { PROVIDER_NAMES } from '../../shared/catalog.ts';
import { TASK_STATUSES } from '../../shared/db/schema.ts';
import type { TaskFilter } from '../../shared/tasks/task-filter.ts';
import { parseTimestamp } from './submit-schema.ts';

/** Longest `q`: a search box, not a document. */
export const MAX_QUERY_CHARS = 200;
/** An id prefix needs this many hex digits to be read as one (8 = the first 32 bits). */
const MIN_ID_PREFIX = 8;

const timestamp = v.pipe(
  v.string(),
  v.isoTimestamp('must be an ISO-8601 timestamp with a time zone'),
  v.check((s) => parseTimestamp(s) !== undefined, 'is not a real date'),
  v.transform((s) => parseTimestamp(s)!),
);

const commaList = <T extends v.GenericSchema<string, unknown>>(
  item: T,
  description: string,
  example: string,
) =>
  v.pipe(
    v.string(),
    v.metadata({ description, examples: [example] }),
    v.transform((s) => s.split(',')),
    v.maxLength(50, 'must list at most 50 values'),
    v.array(item),
  );

/** The filter fields, each optional, as query-string text. */
export const FILTER_FIELDS = {
  status: v.optional(
    commaList(
      v.picklist(TASK_STATUSES, `must be one of: ${TASK_STATUSES.join(', ')}`),
      `comma-separated statuses: ${TASK_STATUSES.join(', ')}`,
      'queued,running',
    ),
  ),
  type: v.optional(v.picklist(['agent'], 'must be "agent"')),
  provider: v.optional(
    commaList(
      v.picklist(PROVIDER_NAMES, `must be one of: ${PROVIDER_NAMES.join(', ')}`),
      `comma-separated providers of the resolved config: ${PROVIDER_NAMES.join(', ')}`,
      'openai,google',
    ),
  ),
  model: v.optional(
    commaList(
      v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(200, 'is too long')),
      'comma-separated models of the resolved config (exact names)',
      'gpt-4o-mini',
    ),
  ),
  q: v.optional(
    v.pipe(
      v.string(),
      v.metadata({
        description:
          'a task id or an id prefix of at least 8 hex digits (dashes as in the id), ' +
          `matched by id; anything else, text searched in the prompt (case-insensitive, at most ${MAX_QUERY_CHARS} characters)`,
        examples: ['What time'],
      }),
      v.maxLength(MAX_QUERY_CHARS, `must be at most ${MAX_QUERY_CHARS} characters`),
    ),
  ),
  created_after: v.optional(timestamp),
  created_before: v.optional(timestamp),
};

export type FilterFields = v.InferOutput<v.ObjectSchema<typeof FILTER_FIELDS, undefined>>;

/** The strict filter object (the bulk cancel's `filter`). */
export const TaskFilterObject = v.strictObject(FILTER_FIELDS);

const DASHES_AT = [8, 13, 18, 23];

/** The id range an id prefix covers, or undefined when `q` is not one. */
export function idPrefixRange(q: string): { lower: string; upper: string } | undefined {
  const text = q.toLowerCase();
  if (!/^[0-9a-f-]+$/.test(text) || text.length > 36) return undefined;
  // Dashes, if any, only where a UUID has them, so "dead-beef-cafe" stays text.
  const dashed = text.includes('-');
  for (let i = 0; i < text.length; i++) {
    if ((text[i] === '-') !== (dashed && DASHES_AT.includes(i))) return undefined;
  }
  const hex = text.replaceAll('-', '');
  if (hex.length < MIN_ID_PREFIX || hex.length > 32) return undefined;
  const uuid = (h: string) =>
    `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return { lower: uuid(hex.padEnd(32, '0')), upper: uuid(hex.padEnd(32, 'f')) };
}

/** The parsed fields as the queries' TaskFilter. */
export function taskFilterOf(fields: FilterFields): TaskFilter {
  const q = fields.q?.trim() ?? '';
  const idRange = q === '' ? undefined : idPrefixRange(q);
  return {
    status: fields.status,
    type: fields.type,
    provider: fields.provider,
    model: fields.model,
    idRange,
    promptContains: q === '' || idRange ? undefined : q,
    createdAfter: fields.created_after,
    createdBefore: fields.created_before,
  };
}
