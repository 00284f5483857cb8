/**
 * The queue's shape for the metrics scrape: how many tasks are queued and
 * running, and how long the oldest has waited. One statement over the
 * non-terminal rows only (the status index finds them), so its cost follows
 * the backlog, never the history: counting finished tasks would read the
 * whole table, and the counters of finished tasks say the same for free.
 */
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';

export type ActiveStatus = 'queued' | 'running';
export const ACTIVE_STATUSES: readonly ActiveStatus[] = ['queued', 'running'];

export interface QueueStat {
  status: ActiveStatus;
  tasks: number;
  /**
   * queued: seconds since the oldest due task's run_at (tasks scheduled for
   * later or waiting out a retry delay are not waiting yet); running: seconds
   * since the longest-running task first started. 0 when there is none.
   */
  oldestAgeSeconds: number;
}

export async function taskQueueStats(db: Db): Promise<QueueStat[]> {
  const { rows } = await sql<{ status: ActiveStatus; tasks: number; oldest: number | null }>`
    SELECT status,
           count(*) AS tasks,
           extract(epoch FROM now() - min(CASE WHEN status = 'queued' THEN run_at ELSE started_at END)
             FILTER (WHERE status = 'running' OR run_at <= now()))::float8 AS oldest
    FROM agentq.tasks
    WHERE status IN ('queued', 'running')
    GROUP BY status`.execute(db);
  return ACTIVE_STATUSES.map((status) => {
    const row = rows.find((r) => r.status === status);
    return { status, tasks: row?.tasks ?? 0, oldestAgeSeconds: Math.max(0, row?.oldest ?? 0) };
  });
}

export interface QueueStatsRow {
  queued: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  queued_due: number;
  /** Seconds the oldest due queued task has waited; null when none is due. */
  oldest_queued_age_s: number | null;
  workers: number;
}

/**
 * The `agentq.queue_stats` view (migrations/0003): counts of every status,
 * so it reads the whole table; callers share one read (api/queue-stats-reader.ts).
 */
export async function queueStatsRead(db: Db): Promise<QueueStatsRow> {
  const { rows } = await sql<QueueStatsRow>`
    SELECT queued, running, completed, failed, cancelled, queued_due, workers,
           extract(epoch FROM oldest_queued_age)::float8 AS oldest_queued_age_s
    FROM agentq.queue_stats`.execute(db);
  return rows[0]!;
}
