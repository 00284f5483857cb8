/**
 * The statements of webhook delivery: recording an attempt in the step log of
 * a FINISHED task, and scheduling the next attempt, in one transaction.
 *
 * A finished task row is frozen whole (migrations/0004), last_event_seq
 * included, so `appendEvent` (which bumps it) cannot be used. Instead the row
 * is locked without being written (SELECT … FOR NO KEY UPDATE, which fires no
 * trigger), and the event is numbered max(seq) + 1 in a LATER statement of the
 * same transaction: in READ COMMITTED each statement takes a fresh snapshot, so
 * once the lock is ours every event committed before it is visible, and two
 * appenders can never pick the same seq.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { toStorableJson } from '../tasks/storable-json.ts';

/** The graphile-worker payload of a `webhook` job (first one added by migrations/0006). */
export interface WebhookJobPayload {
  task_id: string;
  /** The `webhook-id` header: the same on every attempt of this delivery. */
  delivery_id: string;
  /** 1 for the first attempt. */
  attempt: number;
}

// As in 0006: as urgent as the most urgent agent job; the job's own retries only cover a thrown handler.
const WEBHOOK_JOB_PRIORITY = -100;
const WEBHOOK_JOB_MAX_ATTEMPTS = 10;

/**
 * Appends a `webhook` event to a finished task and, with `next`, adds the job
 * of the next attempt `delayMs` from now (the database's clock, which is the
 * one graphile-worker compares run_at with) and notes that time in the event
 * as `next_attempt_at`; both or neither. Returns the event's seq, or undefined
 * when the task is gone (deleted by retention) or not finished.
 */
export async function webhookAttemptRecord(
  db: Db,
  taskId: string,
  data: Record<string, unknown>,
  next?: { payload: WebhookJobPayload; delayMs: number },
): Promise<number | undefined> {
  return db.transaction().execute(async (trx) => {
    const { rows: locked } = await sql`
      SELECT id FROM agentq.tasks
      WHERE id = ${taskId} AND status IN ('completed', 'failed', 'cancelled')
      FOR NO KEY UPDATE`.execute(trx);
    if (locked.length === 0) return undefined;
    const runAt = next
      ? sql`(now() + ${next.delayMs}::int * interval '1 millisecond')`
      : sql`NULL::timestamptz`;
    const { rows } = await sql<{ seq: number }>`
      INSERT INTO agentq.task_events (task_id, seq, type, data)
      SELECT ${taskId}, coalesce(max(seq), 0) + 1, 'webhook',
             ${toStorableJson(data)}::jsonb || jsonb_strip_nulls(jsonb_build_object('next_attempt_at',
               to_char(${runAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
      FROM agentq.task_events WHERE task_id = ${taskId}
      RETURNING seq`.execute(trx);
    if (next) {
      await sql`SELECT graphile_worker.add_job(
        'webhook',
        ${JSON.stringify(next.payload)}::json,
        run_at := ${runAt},
        max_attempts := ${WEBHOOK_JOB_MAX_ATTEMPTS}::int,
        priority := ${WEBHOOK_JOB_PRIORITY}::int
      )`.execute(trx);
    }
    return rows[0]!.seq;
  });
}
