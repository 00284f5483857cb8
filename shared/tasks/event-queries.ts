/**
 * The step log: appending an event (seq taken from the task row, whose row
 * lock orders concurrent appends) and reading a page of it.
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database, TaskUsage } from '../db/schema.ts';
import { toStorableJson } from './storable-json.ts';

export interface EventInput {
  taskId: string;
  type: Database['agentq.task_events']['type'];
  data: Record<string, unknown>;
}

export interface AppendOptions {
  /** Only append while the task is running under this claim (a worker's events). */
  fence?: { claim: number };
  /** Save the task's usage so far in the same statement. */
  usage?: TaskUsage;
  /**
   * Commit without waiting for the WAL flush. Step events each carry a NOTIFY,
   * and Postgres serialises notifying commits server-wide, so a synchronous
   * flush per step was the bottleneck (npm run bench). The attempt's outcome is
   * written synchronously, which flushes its earlier events too; a Postgres
   * crash can lose only a running attempt's latest steps, and that attempt is
   * recovered and run again anyway.
   */
  asyncCommit?: boolean;
}

/**
 * Appends one step-log event, taking the next seq from the task row (the row
 * lock orders concurrent appends, so seq order is commit order). Returns
 * undefined when the task is missing or, with a fence, no longer running under
 * that claim; else the seq and whether cancellation has been requested.
 */
export async function appendEvent(
  db: Db | Transaction<Database>,
  event: EventInput,
  options: AppendOptions = {},
) {
  const fence = options.fence
    ? sql`AND status = 'running' AND claim = ${options.fence.claim}`
    : sql``;
  const usage = options.usage ? JSON.stringify(options.usage) : null;
  const { rows } = await sql<{ seq: number; cancel_requested: boolean }>`
    WITH t AS (
      UPDATE agentq.tasks
      SET last_event_seq = last_event_seq + 1, usage = coalesce(${usage}::jsonb, usage)
      WHERE id = ${event.taskId} ${fence}
      RETURNING id, last_event_seq, cancel_requested_at
    )
    INSERT INTO agentq.task_events (task_id, seq, type, data)
    SELECT id, last_event_seq, ${event.type}, ${toStorableJson(event.data)}::jsonb FROM t
    RETURNING seq, (SELECT cancel_requested_at IS NOT NULL FROM t) AS cancel_requested
    ${options.asyncCommit ? sql`, set_config('synchronous_commit', 'off', true) AS async_commit` : sql``}`.execute(
    db,
  );
  const row = rows[0];
  return row ? { seq: row.seq, cancelRequested: row.cancel_requested } : undefined;
}

export async function eventList(db: Db, taskId: string, after: number, limit: number) {
  return db
    .selectFrom('agentq.task_events')
    .select(['seq', 'type', 'data', 'created_at'])
    .where('task_id', '=', taskId)
    .where('seq', '>', after)
    .orderBy('seq')
    .limit(limit)
    .execute();
}
