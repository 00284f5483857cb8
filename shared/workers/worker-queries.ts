/**
 * The `agentq.workers` heartbeat table and recovery of a dead worker's tasks.
 * graphile-worker alone would leave a crashed worker's jobs locked for 4 hours;
 * here a live worker notices the silence and hands the work back in seconds.
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database } from '../db/schema.ts';
import { CANCELLED_ERROR } from '../tasks/task-error.ts';
import { addAgentJob } from '../tasks/task-queries.ts';

export interface WorkerInfo {
  id: string;
  hostname: string;
  pid: number;
  version: string;
  concurrency: number;
}

/** Records a heartbeat, re-registering if a peer removed us as presumed dead. */
export async function workerHeartbeat(db: Db, worker: WorkerInfo): Promise<void> {
  await db
    .insertInto('agentq.workers')
    .values({ ...worker, last_seen_at: sql`now()` })
    .onConflict((oc) => oc.column('id').doUpdateSet({ last_seen_at: sql`now()` }))
    .execute();
}

export async function workerRemove(db: Db, id: string): Promise<void> {
  await db.deleteFrom('agentq.workers').where('id', '=', id).execute();
}

export interface RecoveredTask {
  id: string;
  status: 'queued' | 'failed' | 'cancelled';
  worker_id: string | null;
  attempts: number;
  priority: number;
}

/**
 * Hands lost running tasks back, in one statement: `cancelled` when
 * cancellation was requested (cancel wins over a retry), else queued while
 * attempts remain (with a fresh run_at), else failed with worker_lost. Each
 * gets its `recovered` event before the status event (a finished row takes no
 * later event): the update reserves one seq and the trigger (0004) puts the
 * status event after it.
 */
async function recoverLost(trx: Transaction<Database>, where: RawBuilder<unknown>, reason: string) {
  const { rows: tasks } = await sql<RecoveredTask>`
    WITH lost AS (
      UPDATE agentq.tasks t SET
        status = CASE WHEN t.cancel_requested_at IS NOT NULL THEN 'cancelled'
                      WHEN t.attempts < t.max_attempts THEN 'queued' ELSE 'failed' END,
        run_at = CASE WHEN t.cancel_requested_at IS NOT NULL THEN t.run_at ELSE now() END,
        error = CASE WHEN t.cancel_requested_at IS NOT NULL THEN ${JSON.stringify(CANCELLED_ERROR)}::jsonb
                ELSE jsonb_build_object(
                  'code', 'worker_lost',
                  'message', 'the worker running this task (' || coalesce(t.worker_id, 'unknown') || ') '
                    || ${reason}::text,
                  -- retryable only when the task runs again: a final error says no retry is left
                  'retryable', t.attempts < t.max_attempts) END,
        last_event_seq = t.last_event_seq + 1
      WHERE t.status = 'running' AND ${where}
      RETURNING t.id, t.status, t.worker_id, t.attempts, t.priority, t.last_event_seq
    ), recovered AS (
      INSERT INTO agentq.task_events (task_id, seq, type, data)
      SELECT id, last_event_seq - 1, 'recovered', jsonb_build_object(
        'previous_worker', worker_id, 'attempt', attempts, 'outcome', status,
        'reason', 'worker ' || ${reason}::text)
      FROM lost
    )
    SELECT id, status, worker_id, attempts, priority FROM lost`.execute(trx);
  // A fresh job: the lost worker may still be alive, and graphile-worker
  // deletes a job by id when its handler returns, whoever holds it by then.
  for (const task of tasks) {
    if (task.status === 'queued') await addAgentJob(trx, task.id, null, task.priority);
  }
  return tasks;
}

/**
 * In one transaction: take the workers (other than `selfId`) silent for longer
 * than `deadAfterMs` (SKIP LOCKED, so two live workers never recover the same
 * one), hand their running tasks back, unlock their graphile-worker jobs (which
 * then find nothing to do), and forget them. Also sweeps running tasks whose
 * worker row is already gone.
 */
export async function workerRecoverDead(db: Db, deadAfterMs: number, selfId: string) {
  return db.transaction().execute(async (trx) => {
    const dead = await sql<{ id: string }>`
      SELECT id FROM agentq.workers
      WHERE last_seen_at < now() - make_interval(secs => ${deadAfterMs / 1000}) AND id <> ${selfId}
      FOR UPDATE SKIP LOCKED`.execute(trx);
    const deadIds = dead.rows.map((r) => r.id);
    const tasks = await recoverLost(
      trx,
      sql`t.worker_id IS DISTINCT FROM ${selfId}
        AND (t.worker_id = ANY(${deadIds}::text[])
             OR (t.updated_at < now() - make_interval(secs => ${deadAfterMs / 1000})
                 AND NOT EXISTS (SELECT 1 FROM agentq.workers w WHERE w.id = t.worker_id)))`,
      'stopped answering',
    );
    // Jobs still locked by a worker that is gone from agentq.workers (it
    // deregistered on a stop whose last job completion never reached the
    // database, or was recovered earlier): graphile-worker would leave them
    // locked for 4 hours; their tasks are finished or handed back already,
    // so unlocked they run, find nothing to do and are deleted.
    const { rows: strays } = await sql<{ locked_by: string }>`
      SELECT DISTINCT j.locked_by FROM graphile_worker._private_jobs j
      WHERE j.locked_by IS NOT NULL AND j.locked_by <> ${selfId}
        AND j.locked_at < now() - make_interval(secs => ${deadAfterMs / 1000})
        AND NOT EXISTS (SELECT 1 FROM agentq.workers w WHERE w.id = j.locked_by)`.execute(trx);
    const lostWorkers = [
      ...new Set([
        ...deadIds,
        ...tasks.map((t) => t.worker_id).filter((w): w is string => !!w),
        ...strays.map((r) => r.locked_by),
      ]),
    ];
    if (lostWorkers.length > 0) {
      await sql`SELECT graphile_worker.force_unlock_workers(${lostWorkers}::text[])`.execute(trx);
    }
    if (deadIds.length > 0)
      await trx.deleteFrom('agentq.workers').where('id', 'in', deadIds).execute();
    return { deadWorkers: deadIds, tasks, unlockedWorkers: lostWorkers };
  });
}

/**
 * A live worker's own orphans: tasks the database says this worker runs but
 * that no attempt in this process is running (its handler gave up on a
 * database error and graphile-worker could not record that either). Only
 * rows untouched for `minAgeMs` count, so a task claimed a moment ago and not
 * yet registered is left alone.
 */
export async function workerRecoverOrphans(
  db: Db,
  selfId: string,
  runningTaskIds: string[],
  minAgeMs: number,
) {
  return db.transaction().execute(async (trx) => {
    return recoverLost(
      trx,
      sql`t.worker_id = ${selfId}
        AND NOT (t.id = ANY(${runningTaskIds}::uuid[]))
        AND t.updated_at < now() - make_interval(secs => ${minAgeMs / 1000})`,
      'lost track of it',
    );
  });
}

export interface WorkerListRow extends WorkerInfo {
  started_at: Date;
  last_seen_at: Date;
  /** Seen within `deadAfterMs` (by the database's clock, which stamps the heartbeats). */
  alive: boolean;
  running: number;
  /** Up to 50 of its running tasks, the longest-running first. */
  running_task_ids: string[];
}

/** Every registered worker, newest first, with what it runs (one statement). */
export async function workerList(db: Db, deadAfterMs: number): Promise<WorkerListRow[]> {
  const { rows } = await sql<WorkerListRow>`
    SELECT w.id, w.hostname, w.pid, w.version, w.concurrency, w.started_at, w.last_seen_at,
           w.last_seen_at >= now() - make_interval(secs => ${deadAfterMs / 1000}) AS alive,
           count(t.id)::int AS running,
           coalesce((array_agg(t.id::text ORDER BY t.started_at, t.id)
                     FILTER (WHERE t.id IS NOT NULL))[1:50], '{}') AS running_task_ids
    FROM agentq.workers w
    LEFT JOIN agentq.tasks t ON t.worker_id = w.id AND t.status = 'running'
    GROUP BY w.id
    ORDER BY w.started_at DESC, w.id`.execute(db);
  return rows;
}
