/**
 * The statements a worker makes for the attempt it runs: claim, take over a
 * lost execution of the same job, record a step, and write the outcome. Every
 * write after the claim is fenced on (status = 'running', attempts = its
 * attempt), so an attempt that was given up on cannot change the task.
 */
import type { Db } from '../db/database.ts';
import type { TaskUsage } from '../db/schema.ts';
import { appendEvent, type EventInput } from './event-queries.ts';
import { toStorableJson } from './storable-json.ts';
import type { TaskError } from './task-error.ts';
import { addAgentJob } from './task-queries.ts';

/** What the worker needs to know about the attempt it runs. */
export interface Attempt {
  taskId: string;
  attempt: number;
}

/**
 * Claims a task for a job run: queued → running, attempts + 1. A task whose
 * job is not the one running (a stale job) or that is no longer queued is not
 * claimed. `takeover` handles a job re-run after its previous execution was
 * lost (the handler threw, or the worker was presumed dead): the task is still
 * `running` under the same job, so this run becomes the next attempt.
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
      worker_id: claim.workerId,
      error: null,
    }))
    .where('id', '=', claim.taskId)
    .where('status', '=', 'queued')
    .where('job_id', '=', claim.jobId)
    .returningAll()
    .executeTakeFirst();
}

export async function taskTakeover(
  db: Db,
  claim: { taskId: string; jobId: number; workerId: string; previousAttempt: number },
) {
  return db
    .updateTable('agentq.tasks')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), worker_id: claim.workerId }))
    .where('id', '=', claim.taskId)
    .where('status', '=', 'running')
    .where('job_id', '=', claim.jobId)
    .where('attempts', '=', claim.previousAttempt)
    .returningAll()
    .executeTakeFirst();
}

export type Outcome =
  | { status: 'completed'; result: { answer: string } }
  | { status: 'failed'; error: TaskError }
  | { status: 'cancelled'; error: TaskError };

/** running → completed | failed | cancelled, only for the attempt that runs it. */
export async function taskFinish(db: Db, attempt: Attempt, outcome: Outcome, usage: TaskUsage) {
  const row = await db
    .updateTable('agentq.tasks')
    .set({
      status: outcome.status,
      result: outcome.status === 'completed' ? toStorableJson(outcome.result) : null,
      error: outcome.status === 'completed' ? null : toStorableJson(outcome.error),
      usage: JSON.stringify(usage),
    })
    .where('id', '=', attempt.taskId)
    .where('status', '=', 'running')
    .where('attempts', '=', attempt.attempt)
    .returning(['id', 'status'])
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * running → queued with a new job due at `runAt`, the `retry` event and the
 * error, in one transaction. Fenced like taskFinish. Returns false when the
 * attempt was fenced out.
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
    /** The attempt did not count (the worker shut down under it): give it back. */
    refundAttempt?: boolean;
  },
) {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('agentq.tasks')
      .set((eb) => ({
        status: 'queued',
        error: toStorableJson(requeue.error),
        run_at: requeue.runAt,
        usage: JSON.stringify(requeue.usage),
        attempts: requeue.refundAttempt ? eb('attempts', '-', 1) : eb.ref('attempts'),
      }))
      .where('id', '=', attempt.taskId)
      .where('status', '=', 'running')
      .where('attempts', '=', attempt.attempt)
      .returning(['id', 'priority'])
      .executeTakeFirst();
    if (!row) return false;
    await addAgentJob(trx, row.id, requeue.runAt, row.priority);
    await appendEvent(trx, { taskId: row.id, type: requeue.event, data: requeue.data });
    return true;
  });
}

/**
 * The worker's append: fenced on its attempt, and optionally saving the usage
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
    { fence: { attempt: attempt.attempt }, usage, asyncCommit: true },
  );
}
