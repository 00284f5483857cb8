/**
 * The `agentq.workers` heartbeat table and recovery of a dead worker's tasks.
 * graphile-worker alone would leave a crashed worker's jobs locked for 4 hours;
 * here a live worker notices the silence and hands the work back in seconds.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { appendEvent } from '../tasks/task-queries.ts';

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
  status: 'queued' | 'failed';
  worker_id: string | null;
  attempts: number;
}

/**
 * In one transaction: take the workers silent for longer than `deadAfterMs`
 * (SKIP LOCKED, so two live workers never recover the same one), requeue their
 * running tasks (or fail those out of attempts) with a `recovered` event,
 * unlock their graphile-worker jobs so they run again, and forget them.
 * Also sweeps running tasks whose worker row is already gone.
 */
export async function workerRecoverDead(db: Db, deadAfterMs: number) {
  return db.transaction().execute(async (trx) => {
    const dead = await sql<{ id: string }>`
      SELECT id FROM agentq.workers
      WHERE last_seen_at < now() - make_interval(secs => ${deadAfterMs / 1000})
      FOR UPDATE SKIP LOCKED`.execute(trx);
    const deadIds = dead.rows.map((r) => r.id);
    const { rows: tasks } = await sql<RecoveredTask>`
      UPDATE agentq.tasks t SET
        status = CASE WHEN t.attempts < t.max_attempts THEN 'queued' ELSE 'failed' END,
        run_at = now(),
        error = jsonb_build_object(
          'code', 'worker_lost',
          'message', 'the worker running this task (' || coalesce(t.worker_id, 'unknown') || ') stopped answering',
          'retryable', true)
      WHERE t.status = 'running'
        AND (t.worker_id = ANY(${deadIds}::text[])
             OR (t.updated_at < now() - make_interval(secs => ${deadAfterMs / 1000})
                 AND NOT EXISTS (SELECT 1 FROM agentq.workers w WHERE w.id = t.worker_id)))
      RETURNING t.id, t.status, t.worker_id, t.attempts`.execute(trx);
    for (const task of tasks) {
      await appendEvent(trx, {
        taskId: task.id,
        type: 'recovered',
        data: { previous_worker: task.worker_id, attempt: task.attempts, outcome: task.status },
      });
    }
    const lostWorkers = [...new Set([...deadIds, ...tasks.map((t) => t.worker_id).filter((w): w is string => !!w)])];
    if (lostWorkers.length > 0) {
      await sql`SELECT graphile_worker.force_unlock_workers(${lostWorkers}::text[])`.execute(trx);
      await trx.deleteFrom('agentq.workers').where('id', 'in', deadIds.length ? deadIds : ['']).execute();
    }
    return { deadWorkers: deadIds, tasks };
  });
}
