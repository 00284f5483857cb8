/**
 * The statements the API makes on task rows: submit (the row and its job in
 * one transaction), read, list, cancel. Status changes are single statements
 * with their guard in the WHERE clause; the database trigger (migrations/0002)
 * refuses any edge the status machine lacks and writes the `status` event.
 * The worker's statements are in attempt-queries.ts, the step log's in
 * event-queries.ts.
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { AgentConfig, Database, TaskStatus } from '../db/schema.ts';
import { appendEvent } from './event-queries.ts';
import { CANCELLED_ERROR } from './task-error.ts';

export type TaskRow = Awaited<ReturnType<typeof taskFindById>> & {};

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
export async function addAgentJob(
  trx: Transaction<Database>,
  taskId: string,
  runAt: Date | null,
  priority: number,
) {
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
    return trx
      .selectFrom('agentq.tasks')
      .selectAll()
      .where('id', '=', task.id)
      .executeTakeFirstOrThrow();
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
  let query = db
    .selectFrom('agentq.tasks')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.status?.length) query = query.where('status', 'in', filter.status);
  if (filter.type) query = query.where('type', '=', filter.type as 'agent');
  if (filter.createdAfter) query = query.where('created_at', '>', filter.createdAfter);
  if (filter.createdBefore) query = query.where('created_at', '<', filter.createdBefore);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  const rows = await query.execute();
  return { rows: rows.slice(0, filter.limit), hasMore: rows.length > filter.limit };
}

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
