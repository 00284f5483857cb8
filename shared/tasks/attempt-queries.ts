/**
 * The statements a worker makes for the attempt it runs: claim, take over a
 * lost execution of the same job, record a step, and write the outcome. Every
 * write after the claim is fenced on (status = 'running', claim = its claim).
 * `claim` grows by one on every claim and takeover and is never given back
 * (unlike `attempts`, which a shutdown requeue refunds), so a write from an
 * attempt that was given up on can never match a later one.
 *
 * A cancel requested while an attempt ends in a way that would run the task
 * again (a retryable failure, a lost worker) wins: the same statement ends the
 * task `cancelled` instead, so there is no moment for the cancel to slip by.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { TaskStatus, TaskUsage } from '../db/schema.ts';
import { appendEvent, type EventInput } from './event-queries.ts';
import { toStorableJson } from './storable-json.ts';
import { CANCELLED_ERROR, type TaskError } from './task-error.ts';
import { addAgentJob, type TaskRow } from './task-queries.ts';

/** What the worker needs to know about the attempt it runs. */
export interface Attempt {
  taskId: string;
  /** The attempt number (what max_attempts counts; shown in events and logs). */
  attempt: number;
  /** The fence: the task's claim counter when this attempt claimed it. */
  claim: number;
}

export const attemptOf = (row: Pick<TaskRow, 'id' | 'attempts' | 'claim'>): Attempt => ({
  taskId: row.id,
  attempt: row.attempts,
  claim: row.claim,
});

const cancelled = sql`${JSON.stringify(CANCELLED_ERROR)}::jsonb`;

/**
 * Claims a task for a job run: queued → running, attempts + 1, claim + 1. A
 * task whose job is not the one running (a stale job) or that is no longer
 * queued is not claimed.
 */
export async function taskClaim(
  db: Db,
  claim: { taskId: string; jobId: number; workerId: string },
) {
  return db
    .updateTable('agentq.tasks')
    .set((eb) => ({
      status: 'running',
      attempts: eb('attempts', '+', 1),
      claim: eb('claim', '+', 1),
      worker_id: claim.workerId,
      error: null,
    }))
    .where('id', '=', claim.taskId)
    .where('status', '=', 'queued')
    .where('job_id', '=', claim.jobId)
    .returningAll()
    .executeTakeFirst();
}

/**
 * A job re-run after its previous execution was lost (the handler threw, or
 * the worker was presumed dead and the job unlocked): the task still says
 * `running` under the same job. Fenced on the claim the caller saw, in one
 * statement: the claim moves on and the `recovered` event is written, and the
 * task is then either run again by this worker (`running`, the next attempt),
 * `failed` with worker_lost when no attempt is left, or `cancelled` when
 * cancellation was requested meanwhile. Undefined when fenced out.
 */
export async function taskTakeover(
  db: Db,
  takeover: {
    taskId: string;
    jobId: number;
    workerId: string;
    previous: { claim: number; workerId: string | null };
  },
) {
  const runsAgain = sql`(cancel_requested_at IS NULL AND attempts < max_attempts)`;
  // A status change puts its status event after the reserved seq (0004).
  const { rows } = await sql<TaskRow>`
    WITH t AS (
      UPDATE agentq.tasks SET
        status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                      WHEN attempts >= max_attempts THEN 'failed' ELSE 'running' END,
        claim = claim + 1,
        attempts = CASE WHEN ${runsAgain} THEN attempts + 1 ELSE attempts END,
        worker_id = CASE WHEN ${runsAgain} THEN ${takeover.workerId} ELSE worker_id END,
        error = CASE WHEN cancel_requested_at IS NOT NULL THEN ${cancelled}
                     WHEN attempts >= max_attempts THEN jsonb_build_object(
                       'code', 'worker_lost',
                       'message', 'the worker running this task (' || coalesce(worker_id, 'unknown')
                         || ') stopped before finishing it',
                       'retryable', false) -- final: no attempt is left
                     ELSE error END,
        last_event_seq = last_event_seq + 1
      WHERE id = ${takeover.taskId} AND status = 'running' AND job_id = ${takeover.jobId}
        AND claim = ${takeover.previous.claim}
      RETURNING *
    ), recovered AS (
      INSERT INTO agentq.task_events (task_id, seq, type, data)
      SELECT id, CASE WHEN status = 'running' THEN last_event_seq ELSE last_event_seq - 1 END,
        'recovered', jsonb_build_object(
          'reason', 'job re-run after its previous execution was lost',
          'previous_worker', ${takeover.previous.workerId}::text,
          'attempt', attempts,
          'outcome', status)
      FROM t
    )
    SELECT * FROM t`.execute(db);
  return rows[0];
}

export type Outcome =
  | { status: 'completed'; result: { answer: string } }
  | {
      status: 'failed';
      error: TaskError;
      /**
       * A requested cancel turns this failure into `cancelled`: true for a
       * failure that would have been retried had attempts been left (stored
       * with retryable false, as no retry is left). Default: error.retryable.
       */
      cancelWins?: boolean;
    }
  | { status: 'cancelled'; error: TaskError };

/**
 * running → completed | failed | cancelled, only for the attempt that runs it.
 * A retryable failure (one with no attempt left) ends `cancelled` instead when
 * cancellation was requested. Returns the status written, or undefined when
 * the attempt was fenced out.
 */
export async function taskFinish(db: Db, attempt: Attempt, outcome: Outcome, usage: TaskUsage) {
  const cancelWins = outcome.status === 'failed' && (outcome.cancelWins ?? outcome.error.retryable);
  const error = outcome.status === 'completed' ? null : toStorableJson(outcome.error);
  const row = await db
    .updateTable('agentq.tasks')
    .set({
      status: cancelWins
        ? sql<TaskStatus>`CASE WHEN cancel_requested_at IS NULL THEN 'failed' ELSE 'cancelled' END`
        : outcome.status,
      result: outcome.status === 'completed' ? toStorableJson(outcome.result) : null,
      error: cancelWins
        ? sql<string>`CASE WHEN cancel_requested_at IS NULL THEN ${error}::jsonb ELSE ${cancelled} END`
        : error,
      usage: JSON.stringify(usage),
    })
    .where('id', '=', attempt.taskId)
    .where('status', '=', 'running')
    .where('claim', '=', attempt.claim)
    .returning(['id', 'status'])
    .executeTakeFirst();
  return row?.status;
}

/**
 * running → queued with a new job due at `runAt`, the `retry` event and the
 * error, in one transaction; or running → cancelled when cancellation was
 * requested (no job, no retry). Fenced like taskFinish. Returns the status
 * written, or undefined when the attempt was fenced out.
 */
export async function taskRequeue(
  db: Db,
  attempt: Attempt,
  requeue: {
    error: TaskError;
    runAt: Date;
    usage: TaskUsage;
    event: 'retry' | 'recovered';
    data: Record<string, unknown>;
    /** The attempt did not count (the worker shut down under it): give it back. The claim stays. */
    refundAttempt?: boolean;
  },
) {
  return db.transaction().execute(async (trx) => {
    const cancel = sql<boolean>`cancel_requested_at IS NOT NULL`;
    const row = await trx
      .updateTable('agentq.tasks')
      .set((eb) => ({
        status: sql<TaskStatus>`CASE WHEN ${cancel} THEN 'cancelled' ELSE 'queued' END`,
        error: sql<string>`CASE WHEN ${cancel} THEN ${cancelled} ELSE ${toStorableJson(requeue.error)}::jsonb END`,
        run_at: sql<Date>`CASE WHEN ${cancel} THEN run_at ELSE ${requeue.runAt}::timestamptz END`,
        usage: JSON.stringify(requeue.usage),
        attempts: requeue.refundAttempt
          ? sql<number>`CASE WHEN ${cancel} THEN attempts ELSE attempts - 1 END`
          : eb.ref('attempts'),
      }))
      .where('id', '=', attempt.taskId)
      .where('status', '=', 'running')
      .where('claim', '=', attempt.claim)
      .returning(['id', 'priority', 'status'])
      .executeTakeFirst();
    if (!row || row.status === 'cancelled') return row?.status;
    await addAgentJob(trx, row.id, requeue.runAt, row.priority);
    await appendEvent(trx, { taskId: row.id, type: requeue.event, data: requeue.data });
    return row.status;
  });
}

/**
 * The worker's append: fenced on its claim, and optionally saving the usage
 * so far. Returns undefined when the attempt was fenced out (the worker must
 * stop), else whether cancellation has been requested.
 */
export async function appendAttemptEvent(
  db: Db,
  attempt: Attempt,
  event: Omit<EventInput, 'taskId'>,
  usage?: TaskUsage,
) {
  return appendEvent(
    db,
    { taskId: attempt.taskId, ...event },
    { fence: { claim: attempt.claim }, usage, asyncCommit: true },
  );
}
