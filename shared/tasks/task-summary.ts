/**
 * The summary view of a task (lists and the change stream): the task JSON
 * with `input.prompt` and `result.answer` cut to SUMMARY_CHARS characters plus
 * "…", and a marker saying so. The cut happens in SQL, so a long prompt never
 * leaves the database whole for a list.
 */
import { sql, type SelectQueryBuilder } from 'kysely';
import type { Database, TasksTable } from '../db/schema.ts';
import { taskJson } from './task-json.ts';
import type { TaskRow } from './task-queries.ts';

/** How many characters of the prompt and the answer a summary keeps. */
export const SUMMARY_CHARS = 280;

/** Every column but the two that may be large; the compile-time check below keeps it whole. */
const SMALL_COLUMNS = [
  'id',
  'type',
  'status',
  'config',
  'error',
  'usage',
  'attempts',
  'claim',
  'max_attempts',
  'priority',
  'timeout_ms',
  'idempotency_key',
  'request_hash',
  'metadata',
  'worker_id',
  'job_id',
  'last_event_seq',
  'created_at',
  'updated_at',
  'run_at',
  'started_at',
  'finished_at',
  'cancel_requested_at',
  'webhook_url',
  'trace_context',
] as const satisfies ReadonlyArray<keyof TasksTable>;
type Missing = Exclude<keyof TasksTable, (typeof SMALL_COLUMNS)[number] | 'input' | 'result'>;
const allColumns: [Missing] extends [never] ? true : Missing = true;
void allColumns;

const cut = (text: ReturnType<typeof sql<string>>) =>
  sql`left(${text}, ${sql.lit(SUMMARY_CHARS)}) || '…'`;
const prompt = sql<string>`input->>'prompt'`;
const answer = sql<string>`result->>'answer'`;

export type TaskSummaryRow = TaskRow & { input_truncated: boolean; result_truncated: boolean };

/** Selects the summary columns on a query over agentq.tasks. */
export function selectSummary<O>(query: SelectQueryBuilder<Database, 'agentq.tasks', O>) {
  return query.select([
    ...SMALL_COLUMNS,
    sql<TaskRow['input']>`CASE WHEN length(${prompt}) > ${sql.lit(SUMMARY_CHARS)}
      THEN jsonb_set(input, '{prompt}', to_jsonb(${cut(prompt)})) ELSE input END`.as('input'),
    sql<TaskRow['result']>`CASE WHEN length(${answer}) > ${sql.lit(SUMMARY_CHARS)}
      THEN jsonb_set(result, '{answer}', to_jsonb(${cut(answer)})) ELSE result END`.as('result'),
    sql<boolean>`coalesce(length(${prompt}) > ${sql.lit(SUMMARY_CHARS)}, false)`.as(
      'input_truncated',
    ),
    sql<boolean>`coalesce(length(${answer}) > ${sql.lit(SUMMARY_CHARS)}, false)`.as(
      'result_truncated',
    ),
  ]);
}

export function taskSummaryJson(row: TaskSummaryRow) {
  return {
    ...taskJson(row),
    input_truncated: row.input_truncated,
    result_truncated: row.result_truncated,
  };
}
export type TaskSummaryJson = ReturnType<typeof taskSummaryJson>;
