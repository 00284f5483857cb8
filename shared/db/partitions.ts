/**
 * History in daily partitions (migrations/0008): making them ahead, and
 * retention, which removes whole days by detaching and dropping their two
 * partitions (tasks and events) and deletes finished tasks in bounded batches
 * only where a day cannot go whole (the day the horizon falls in, or an old
 * day still holding a queued or running task). Queued and running tasks are
 * never touched.
 *
 * The worker runs this hourly (a graphile-worker cron item) and at start;
 * `npm run retention` runs it by hand.
 */
import type pg from 'pg';
import { sql } from 'kysely';
import type { Db } from './database.ts';
import type { Logger } from '../logger.ts';

/** Days of partitions kept ready ahead of now. */
export const PARTITION_AHEAD_DAYS = 14;
/** Rows per DELETE statement where retention deletes instead of dropping. */
export const RETENTION_BATCH = 5000;

/** Makes the partitions now and the next `aheadDays` need (idempotent); returns how many days it made. */
export async function ensurePartitions(db: Db, aheadDays = PARTITION_AHEAD_DAYS): Promise<number> {
  const { rows } = await sql<{ made: number }>`
    SELECT agentq.ensure_partitions(make_interval(days => ${aheadDays}::int)) AS made`.execute(db);
  return rows[0]?.made ?? 0;
}

export interface RetentionOptions {
  pool: pg.Pool;
  /** Finished tasks submitted more than this many days ago go; 0 keeps everything. */
  retentionDays: number;
  aheadDays?: number;
  batchSize?: number;
  /** Most DELETE batches in one run; the next run carries on. */
  maxBatches?: number;
  /** Each DDL statement waits at most this long for its lock, then the day waits for the next run. */
  lockTimeoutMs?: number;
  /** The clock the horizon is counted from (tests move it); the database's now() by default. */
  now?: Date;
  logger?: Logger;
}

export interface RetentionReport {
  /** Days of partitions made ahead. */
  created: number;
  /** Tasks partitions dropped whole (their events partitions with them). */
  dropped: string[];
  /** Partitions whose detach met a lock held too long: the next run retries. */
  deferred: string[];
  /** Finished tasks deleted in batches (their events went by cascade). */
  deletedTasks: number;
  /** Idempotency keys deleted before their tasks' partition was dropped. */
  deletedKeys: number;
  /** graphile-worker jobs that still named a task of a dropped day. */
  removedJobs: number;
  /** Submit time before which finished tasks go; null when retention is off. */
  horizon: string | null;
  /** false: another run held the lock, nothing was done. */
  ran: boolean;
  ms: number;
}

// Any fixed number: one retention run at a time across every process.
const RETENTION_LOCK_ID = 7_358_240_115;

const isLockTimeout = (err: unknown) => (err as { code?: unknown }).code === '55P03';

/** One retention run; see the file comment. */
export async function runRetention(options: RetentionOptions): Promise<RetentionReport> {
  const started = performance.now();
  const batch = options.batchSize ?? RETENTION_BATCH;
  const maxBatches = options.maxBatches ?? 200;
  const report: RetentionReport = {
    created: 0,
    dropped: [],
    deferred: [],
    deletedTasks: 0,
    deletedKeys: 0,
    removedJobs: 0,
    horizon: null,
    ran: false,
    ms: 0,
  };
  const client = await options.pool.connect();
  try {
    // Outside any transaction: DETACH … CONCURRENTLY refuses to run in one.
    await client.query(
      `SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs ?? 1000))}`,
    );
    const { rows: locked } = await client.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1) AS ok',
      [RETENTION_LOCK_ID],
    );
    if (!locked[0]?.ok) {
      options.logger?.info('partition maintenance: another run is in progress; skipped');
      return report;
    }
    report.ran = true;
    try {
      const { rows } = await client.query<{ made: number }>(
        'SELECT agentq.ensure_partitions(make_interval(days => $1::int)) AS made',
        [options.aheadDays ?? PARTITION_AHEAD_DAYS],
      );
      report.created = rows[0]?.made ?? 0;
      if (options.retentionDays > 0) {
        await finishInterruptedDrops(client, report);
        const { rows: h } = await client.query<{ horizon: Date }>(
          `SELECT coalesce($1::timestamptz, now()) - make_interval(days => $2::int) AS horizon`,
          [options.now ?? null, options.retentionDays],
        );
        const horizon = h[0]!.horizon;
        report.horizon = horizon.toISOString();
        await applyRetention(client, horizon, batch, maxBatches, report);
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [RETENTION_LOCK_ID]);
    }
  } finally {
    // The session's lock_timeout must not follow the client back into the pool.
    await client.query('RESET lock_timeout').catch(() => {});
    client.release();
    report.ms = Math.round(performance.now() - started);
  }
  options.logger?.info(report, 'partition maintenance');
  return report;
}

interface PlanRow {
  tasks_partition: string;
  events_partition: string | null;
  lo: string;
  hi: string;
  action: 'drop' | 'delete';
}

async function applyRetention(
  client: pg.PoolClient,
  horizon: Date,
  batch: number,
  maxBatches: number,
  report: RetentionReport,
) {
  const { rows: plan } = await client.query<PlanRow>(
    `SELECT tasks_partition::text, events_partition::text, lo, hi, action
     FROM agentq.retention_plan($1)`,
    [horizon],
  );
  let batches = 0;
  for (const p of plan) {
    if (p.action === 'drop') {
      // Keys first: nothing else removes them once the day is dropped.
      for (;;) {
        const { rows } = await client.query<{ n: number }>(
          'SELECT agentq.delete_idempotency_keys($1, $2, $3) AS n',
          [p.lo, p.hi, batch],
        );
        report.deletedKeys += rows[0]!.n;
        if (rows[0]!.n < batch) break;
      }
      report.removedJobs += await removeJobsOfRange(client, p.lo, p.hi);
      try {
        await client.query(
          `ALTER TABLE agentq.task_events DETACH PARTITION ${p.events_partition} CONCURRENTLY`,
        );
        await client.query(
          `ALTER TABLE agentq.tasks DETACH PARTITION ${p.tasks_partition} CONCURRENTLY`,
        );
        await client.query(`DROP TABLE ${p.events_partition}, ${p.tasks_partition}`);
        report.dropped.push(p.tasks_partition);
      } catch (err) {
        if (!isLockTimeout(err)) throw err;
        // Left detached or detach-pending: the next run's finishInterruptedDrops completes it.
        report.deferred.push(p.tasks_partition);
      }
      continue;
    }
    for (; batches < maxBatches; batches++) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT agentq.delete_finished_tasks($1, least($2::uuid, agentq.uuid_floor($3)), $4) AS n`,
        [p.lo, p.hi, horizon, batch],
      );
      report.deletedTasks += rows[0]!.n;
      if (rows[0]!.n < batch) break;
    }
  }
}

/**
 * graphile-worker jobs naming a task of [lo, hi): a finished task has no
 * agent job, but a webhook delivery may still be retrying. Its handler would
 * drop a job whose task is gone anyway; removing it now saves the attempt.
 * Locked (running) jobs are left to finish.
 */
async function removeJobsOfRange(client: pg.PoolClient, lo: string, hi: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM graphile_worker.complete_jobs(ARRAY(
       SELECT j.id FROM graphile_worker._private_jobs j
       JOIN graphile_worker._private_tasks t ON t.id = j.task_id
       WHERE t.identifier IN ('agent', 'webhook') AND j.locked_at IS NULL
         AND j.payload->>'task_id' >= $1 AND j.payload->>'task_id' < $2))`,
    [lo, hi],
  );
  return rows[0]!.n;
}

/**
 * A run stopped by a lock timeout leaves a partition detach-pending (FINALIZE
 * completes it) or detached but not dropped; this completes both, so every
 * run starts from attached partitions only.
 */
async function finishInterruptedDrops(client: pg.PoolClient, report: RetentionReport) {
  const { rows: pending } = await client.query<{ parent: string; partition: string }>(
    `SELECT parent, partition::text FROM (
       SELECT 'agentq.task_events' AS parent, * FROM agentq.partition_bounds('agentq.task_events')
       UNION ALL
       SELECT 'agentq.tasks', * FROM agentq.partition_bounds('agentq.tasks')) b
     WHERE detach_pending ORDER BY parent`,
  );
  for (const p of pending) {
    await client.query(`ALTER TABLE ${p.parent} DETACH PARTITION ${p.partition} FINALIZE`);
  }
  // Day tables that are no longer partitions: a drop that did not finish.
  const { rows: orphans } = await client.query<{ events: string | null; tasks: string | null }>(
    `WITH t AS (
       SELECT c.relname, c.relispartition, c.relname ~ '^task_events_' AS is_events,
              substring(c.relname FROM '^(?:tasks|task_events)_(.*)$') AS suffix
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'agentq' AND c.relkind = 'r'
         AND c.relname ~ '^(tasks|task_events)_(p[0-9]{8}|history|future)$'
     ), pairs AS (
       SELECT e.relname AS events, e.relispartition AS events_attached,
              k.relname AS tasks, k.relispartition AS tasks_attached
       FROM (SELECT * FROM t WHERE is_events) e
       FULL JOIN (SELECT * FROM t WHERE NOT is_events) k ON k.suffix = e.suffix
     )
     SELECT 'agentq.' || quote_ident(events) AS events, 'agentq.' || quote_ident(tasks) AS tasks
     FROM pairs
     WHERE (events IS NOT NULL AND NOT events_attached)
        OR (events IS NULL AND NOT tasks_attached)`,
  );
  for (const o of orphans) {
    try {
      if (o.tasks) {
        const { rows } = await client.query<{ attached: boolean }>(
          `SELECT relispartition AS attached FROM pg_class WHERE oid = $1::regclass`,
          [o.tasks],
        );
        if (rows[0]?.attached)
          await client.query(`ALTER TABLE agentq.tasks DETACH PARTITION ${o.tasks} CONCURRENTLY`);
      }
      await client.query(`DROP TABLE ${[o.events, o.tasks].filter(Boolean).join(', ')}`);
      if (o.tasks) report.dropped.push(o.tasks);
    } catch (err) {
      if (!isLockTimeout(err)) throw err;
      report.deferred.push(o.tasks ?? o.events!);
    }
  }
}
