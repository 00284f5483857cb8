/**
 * The step log: appending an event (seq taken from the task row, whose row
 * lock orders concurrent appends) and reading a page of it.
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';

export interface EventInput {
  taskId: string;
  type: Database['agentq.task_events']['type'];
  data: Record<string, unknown>;
}

/**
 * Appends one step-log event, taking the next seq from the task row (the row
 * lock orders concurrent appends, so seq order is commit order).
 */
export async function appendEvent(db: Db | Transaction<Database>, event: EventInput) {
  const { rows } = await sql<{ seq: number }>`
    WITH t AS (
      UPDATE agentq.tasks SET last_event_seq = last_event_seq + 1
      WHERE id = ${event.taskId} RETURNING id, last_event_seq
    )
    INSERT INTO agentq.task_events (task_id, seq, type, data)
    SELECT id, last_event_seq, ${event.type}, ${JSON.stringify(event.data)}::jsonb FROM t
    RETURNING seq`.execute(db);
  return rows[0]?.seq;
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
