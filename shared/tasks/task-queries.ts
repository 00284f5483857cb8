/**
 * Every statement that reads or changes a task row. Status changes are single
 * statements with their guard in the WHERE clause; the database trigger
 * (migrations/0002) refuses any edge the status machine lacks and writes the
 * `status` event. Worker writes are fenced on (status = 'running', attempts).
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { AgentConfig, Database, TaskStatus, TaskUsage } from '../db/schema.ts';
import type { TaskError } from './task-error.ts';

export type TaskRow = Awaited<ReturnType<typeof taskFindById>> & {};

/** What the worker needs to know about the attempt it runs. */
export interface Attempt {
  taskId: string;
  attempt: number;
}

export interface NewTask {
  id: string;
  type: 'agent';
  input: { prompt: string };
  config: AgentConfig;
  maxAttempts: number;
  priority: number;
  timeoutMs: number;
  runAt: Date | null;
  metadata: Record<string, unknown>;
  idempotencyKey: string | null;
  requestHash: string | null;
}

/** graphile-worker runs lower priority numbers first; ours run higher first. */
export const jobPriority = (priority: number) => -priority;

// A job's own attempts only count crashes and thrown handlers; the task's
// max_attempts governs retries, so the job gets a generous cap of its own.
const JOB_MAX_ATTEMPTS = 25;

/**
 * Adds the task's next graphile-worker job and points the task at it. Every
 * requeue gets a NEW job: graphile-worker deletes a job by id when a handler
 * returns, even one that was unlocked and handed to another worker meanwhile,
 * so a presumed-dead worker finishing late must never hold the task's only job.
 */
export async function addAgentJob(trx: Transaction<Database>, taskId: string, runAt: Date | null, priority: number) {
  const { rows } = await sql<{ id: number }>`
    SELECT (graphile_worker.add_job(
      'agent',
      json_build_object('task_id', ${taskId}::uuid),
      run_at := coalesce(${runAt}::timestamptz, now()),
      max_attempts := ${JOB_MAX_ATTEMPTS}::int,
      priority := ${jobPriority(priority)}::int
    )).id AS id`.execute(trx);
  const jobId = rows[0]!.id;
  await trx.updateTable('agentq.tasks').set({ job_id: jobId }).where('id', '=', taskId).execute();
  return jobId;
}

/**
 * Inserts the task and its graphile-worker job in one transaction: both commit
 * or neither does. Returns undefined when the idempotency key is taken.
 */
export async function taskInsertWithJob(db: Db, task: NewTask) {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('agentq.tasks')
      .values({
        id: task.id,
        type: task.type,
        input: JSON.stringify(task.input),
        config: JSON.stringify(task.config),
        max_attempts: task.maxAttempts,
        priority: task.priority,
        timeout_ms: task.timeoutMs,
        run_at: task.runAt ?? sql<Date>`now()`,
        metadata: JSON.stringify(task.metadata),
        idempotency_key: task.idempotencyKey,
        request_hash: task.requestHash,
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) return undefined;
    await addAgentJob(trx, task.id, task.runAt, task.priority);
    return trx.selectFrom('agentq.tasks').selectAll().where('id', '=', task.id).executeTakeFirstOrThrow();
  });
}

export async function taskFindById(db: Db, id: string) {
  return db.selectFrom('agentq.tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function taskFindByIdempotencyKey(db: Db, key: string) {
  return db
    .selectFrom('agentq.tasks')
    .selectAll()
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
}

export interface TaskListFilter {
  status?: TaskStatus[];
  type?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  /** Return tasks older than this id (ids are time-ordered UUIDv7). */
  beforeId?: string;
  limit: number;
}

/** Newest first. Asks for one extra row so the caller knows whether a next page exists. */
export async function taskList(db: Db, filter: TaskListFilter) {
  let query = db.selectFrom('agentq.tasks').selectAll().orderBy('id', 'desc').limit(filter.limit + 1);
  if (filter.status?.length) query = query.where('status', 'in', filter.status);
  if (filter.type) query = query.where('type', '=', filter.type as 'agent');
  if (filter.createdAfter) query = query.where('created_at', '>', filter.createdAfter);
  if (filter.createdBefore) query = query.where('created_at', '<', filter.createdBefore);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  const rows = await query.execute();
  return { rows: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
}

const CANCELLED_ERROR: TaskError = {
  code: 'cancelled',
  message: 'cancelled by request',
  retryable: false,
};

/** queued → cancelled, removing its (unlocked) job in the same transaction. */
export async function taskCancelQueued(db: Db, id: string) {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('agentq.tasks')
      .set({
        status: 'cancelled',
        cancel_requested_at: sql`now()`,
        error: JSON.stringify(CANCELLED_ERROR),
      })
      .where('id', '=', id)
      .where('status', '=', 'queued')
      .returningAll()
      .executeTakeFirst();
    if (row?.job_id != null) {
      await sql`SELECT graphile_worker.complete_jobs(ARRAY[${row.job_id}]::bigint[])`.execute(trx);
    }
    return row;
  });
}

/**
 * A running task: records the request and wakes its worker (NOTIFY
 * agentq_cancel). The worker aborts and writes `cancelled`. Idempotent: a
 * second request keeps the first time and sends no second event.
 */
export async function taskRequestCancel(db: Db, id: string) {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ first: boolean }>`
      UPDATE agentq.tasks SET cancel_requested_at = coalesce(cancel_requested_at, now())
      WHERE id = ${id} AND status = 'running'
      RETURNING (cancel_requested_at = now()) AS first`.execute(trx);
    const row = rows[0];
    if (!row) return undefined;
    if (row.first) {
      await appendEvent(trx, { taskId: id, type: 'cancel_requested', data: {} });
      await sql`SELECT pg_notify('agentq_cancel', ${id})`.execute(trx);
    }
    return taskFindById(trx, id);
  });
}

/**
 * Claims a task for a job run: queued → running, attempts + 1. A task whose
 * job is not the one running (a stale job) or that is no longer queued is not
 * claimed. `takeover` handles a job re-run after its previous execution was
 * lost (the handler threw, or the worker was presumed dead): the task is still
 * `running` under the same job, so this run becomes the next attempt.
 */
export async function taskClaim(db: Db, claim: { taskId: string; jobId: number; workerId: string }) {
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
      result: outcome.status === 'completed' ? (JSON.stringify(outcome.result)) : null,
      error: outcome.status === 'completed' ? null : (JSON.stringify(outcome.error)),
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
        error: JSON.stringify(requeue.error),
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
  const { rows } = await sql<{ seq: number; cancel_requested: boolean }>`
    WITH t AS (
      UPDATE agentq.tasks
      SET last_event_seq = last_event_seq + 1,
          usage = coalesce(${usage ? JSON.stringify(usage) : null}::jsonb, usage)
      WHERE id = ${attempt.taskId} AND status = 'running' AND attempts = ${attempt.attempt}
      RETURNING id, last_event_seq, cancel_requested_at
    )
    INSERT INTO agentq.task_events (task_id, seq, type, data)
    SELECT id, last_event_seq, ${event.type}, ${JSON.stringify(event.data)}::jsonb FROM t
    RETURNING seq, (SELECT cancel_requested_at IS NOT NULL FROM t) AS cancel_requested,
      -- Step events commit without waiting for the WAL flush: each carries a
      -- NOTIFY, and Postgres serialises notifying commits server-wide, so a
      -- synchronous flush per step made it the bottleneck (npm run bench). The
      -- attempt's outcome is written synchronously, which flushes its earlier
      -- events too; a Postgres crash can lose only a running attempt's latest
      -- steps, and that attempt is recovered and run again anyway.
      set_config('synchronous_commit', 'off', true) AS async_commit`.execute(db);
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
