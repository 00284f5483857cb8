/**
 * History must not slow the queue: the drain of N queued tasks (offline
 * provider, one worker at the bench concurrency, in this process) with H
 * finished tasks and their step events already in the tables, for each H in
 * BENCH_HISTORY, beside the figure with empty tables (H = 0).
 *
 * The history is copied from real finished tasks (the untimed warm-up's and
 * the earlier steps'), so its rows and events have the real shapes and sizes
 * (about 9 events a task). It is bulk-loaded with set-based SQL on one
 * connection under `SET session_replication_role = replica`: that skips the
 * tables' triggers (the status machine refuses to INSERT a finished task, and
 * would write a status event and a NOTIFY per row) and the foreign-key
 * checks; the copies are consistent by construction (every event's task is
 * inserted in the same statement). It needs a superuser (the embedded
 * Postgres is one); without it the phase is skipped with a note. Then VACUUM
 * ANALYZE, so the planner and the visibility map see the tables as a
 * long-running installation would.
 *
 * At the largest H it writes EXPLAIN (ANALYZE, BUFFERS) of the hot statements
 * to bench/explain.txt (explain.ts).
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createPool } from '../shared/db/database.ts';
import { runRetention } from '../shared/db/partitions.ts';
import type { AgentConfig } from '../shared/db/schema.ts';
import { AGENTQ_REMAINING_SQL, benchConfig, startBenchWorker } from './agentq.ts';
import type { PhaseContext } from './context.ts';
import { explainHotStatements, renderPlans } from './explain.ts';
import { fillQueue, uuid7Sql } from './fill.ts';
import { pollUntil, secondsSince } from './measure.ts';
import { Monitor } from './monitor.ts';
import { resolveAgentConfig } from '../shared/tasks/agent-config.ts';

export const EXPLAIN_PATH = fileURLToPath(new URL('./explain.txt', import.meta.url));

/** Tasks copied per statement (and transaction) while loading history. */
const LOAD_CHUNK = 50_000;
/** How old the loaded history is, in days: older than the retention the last step applies. */
const HISTORY_AGE_DAYS = 40;
const RETENTION_DAYS = 30;

export interface HistoryStep {
  /** Finished tasks present when the drain started. */
  history: number;
  events: number;
  loadSeconds: number;
  seconds: number;
  tasksPerSecond: number;
}

/** The retention run after the last drain (shared/db/partitions.ts), its history past the horizon. */
export interface RetentionStep {
  ms: number;
  dropped: string[];
  deletedTasks: number;
  tasksBefore: number;
  tasksAfter: number;
}

export type HistoryResult =
  | { skipped: string }
  | {
      steps: HistoryStep[];
      explainPath: string | undefined;
      tableMb: Record<string, number>;
      /** SELECT * FROM agentq.queue_stats with the largest history present. */
      queueStatsMs: number | undefined;
      retention: RetentionStep | undefined;
    };

async function bulkLoad(
  ctx: PhaseContext,
  url: string,
  from: number,
  count: number,
): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'agentq-bench-load' });
  await client.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    // Templates: the finished tasks present now, numbered.
    await client.query(`
      CREATE TEMP TABLE bench_templates AS
      SELECT (row_number() OVER (ORDER BY id) - 1)::int AS n, id
      FROM agentq.tasks WHERE status = 'completed'`);
    const templates = Number(
      (await client.query<{ n: string }>(`SELECT count(*) AS n FROM bench_templates`)).rows[0]?.n,
    );
    if (templates === 0) throw new Error('history: no finished task to copy');
    // History ends 40 days ago, one task per millisecond before that, so every
    // copy sorts (by id and created_at) before the tasks the drain adds, and
    // lands in a day partition past the 30-day retention, which the
    // retention run at the end drops whole.
    const baseMs = Date.now() - HISTORY_AGE_DAYS * 86_400_000 - (from + count);
    for (let done = 0; done < count; done += LOAD_CHUNK) {
      const n = Math.min(LOAD_CHUNK, count - done);
      await client.query(
        `WITH src AS MATERIALIZED (
           SELECT ${uuid7Sql('$1::bigint + g.i')} AS id,
                  to_timestamp(($1::bigint + g.i) / 1000.0) AS created_at,
                  tp.id AS template_id
           FROM generate_series($2::int, $3::int) g(i)
           JOIN bench_templates tp ON tp.n = g.i % $4::int
         ), t AS (
           INSERT INTO agentq.tasks (id, type, status, input, config, result, error, usage, attempts,
             max_attempts, priority, timeout_ms, metadata, worker_id, job_id, last_event_seq, claim,
             created_at, updated_at, run_at, started_at, finished_at)
           SELECT src.id, x.type, x.status, x.input, x.config, x.result, x.error, x.usage, x.attempts,
             x.max_attempts, x.priority, x.timeout_ms, x.metadata, x.worker_id, NULL, x.last_event_seq,
             x.claim, src.created_at, src.created_at + (x.updated_at - x.created_at), src.created_at,
             src.created_at + (x.started_at - x.created_at), src.created_at + (x.finished_at - x.created_at)
           FROM src JOIN agentq.tasks x ON x.id = src.template_id
           RETURNING 1
         )
         INSERT INTO agentq.task_events (task_id, seq, type, data, created_at)
         SELECT src.id, e.seq, e.type, e.data, src.created_at + (e.created_at - x.created_at)
         FROM src
         JOIN agentq.tasks x ON x.id = src.template_id
         JOIN agentq.task_events e ON e.task_id = src.template_id`,
        [baseMs, from + done, from + done + n - 1, templates],
      );
      ctx.log(
        `history: loaded ${(done + n).toLocaleString('en-US')} of ${count.toLocaleString('en-US')} tasks`,
      );
    }
    await client.query(`RESET session_replication_role`);
  } finally {
    await client.end();
  }
}

async function counts(monitor: Monitor) {
  const [row] = await monitor.query<{ tasks: number; events: number }>(
    `SELECT (SELECT count(*) FROM agentq.tasks) AS tasks, (SELECT count(*) FROM agentq.task_events) AS events`,
  );
  return row!;
}

/** Whether this connection may skip triggers (session_replication_role needs a superuser). */
async function canSkipTriggers(monitor: Monitor): Promise<boolean> {
  const [row] = await monitor.query<{ su: boolean }>(
    `SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`,
  );
  return row?.su === true;
}

export async function history(ctx: PhaseContext, sizes: number[]): Promise<HistoryResult> {
  const url = await ctx.pg.createMigratedDatabase(`agentq_bench_hist_${process.pid}`);
  const monitor = await Monitor.connect(url);
  ctx.onCleanup('history monitor', () => monitor.close());
  if (sizes.some((s) => s > 0) && !(await canSkipTriggers(monitor))) {
    return {
      skipped:
        'the database user is not a superuser, so the history cannot be bulk-loaded with triggers off',
    };
  }
  const pool = createPool({ connectionString: url, applicationName: 'agentq-bench-fill', max: 2 });
  ctx.onCleanup('history fill pool', () => pool.end());
  const config = benchConfig(url, ctx.concurrency, ctx.poolMax);
  const agentConfig: AgentConfig = resolveAgentConfig(
    {},
    { provider: config.defaultProvider, model: config.defaultModel },
  );
  const worker = await startBenchWorker(config, url);
  const stopWorker = ctx.onCleanup('history worker', () => worker.stop());
  const drain = (what: string) =>
    pollUntil(async () => (await monitor.count(AGENTQ_REMAINING_SQL)) === 0, {
      intervalMs: ctx.donePollMs,
      timeoutMs: ctx.phaseTimeoutMs,
      what,
    });

  // The history goes to day partitions of its own (40 days old), not to the
  // history partition the migration made (which ends yesterday and so cannot
  // be dropped whole for 30 days): the retention run at the end then drops
  // whole days, as it would in an installation running for a while.
  await monitor.query(`DROP TABLE agentq.task_events_history, agentq.tasks_history`);
  await monitor.query(
    `SELECT agentq.create_partitions(now() - make_interval(days => $1::int + 5), now())`,
    [HISTORY_AGE_DAYS],
  );

  // Untimed: warms the worker up and makes the first templates.
  await fillQueue(pool, Math.min(200, ctx.tasks), agentConfig);
  await drain('the history warm-up to drain');

  const steps: HistoryStep[] = [];
  for (const size of sizes) {
    const loadStart = performance.now();
    const present = (await counts(monitor)).tasks;
    if (present > size) {
      await monitor.query(
        `DELETE FROM agentq.tasks WHERE id IN (SELECT id FROM agentq.tasks ORDER BY id LIMIT $1)`,
        [present - size],
      );
    } else if (present < size) {
      ctx.log(`history: loading ${(size - present).toLocaleString('en-US')} finished tasks`);
      await bulkLoad(ctx, url, present, size - present);
    }
    await monitor.query('VACUUM ANALYZE agentq.tasks');
    await monitor.query('VACUUM ANALYZE agentq.task_events');
    // The load wrote gigabytes of WAL: finish its checkpoint now, so the timed
    // drain measures a database holding the history, not one still flushing it.
    await monitor.query('CHECKPOINT');
    const loadSeconds = secondsSince(loadStart);
    const { tasks, events } = await counts(monitor);
    ctx.log(`history: drain with ${tasks.toLocaleString('en-US')} finished tasks present`);
    await fillQueue(pool, ctx.tasks, agentConfig);
    const start = performance.now();
    await drain(`the drain with ${size} finished tasks present`);
    const seconds = secondsSince(start);
    steps.push({
      history: tasks,
      events,
      loadSeconds,
      seconds,
      tasksPerSecond: ctx.tasks / seconds,
    });
  }
  await stopWorker();

  let explainPath: string | undefined;
  const largest = steps.at(-1);
  if (largest) {
    const plans = await explainHotStatements(url, agentConfig, Math.min(ctx.concurrency, 50));
    const [versionRow] = await monitor.query<{ server_version: string }>(`SHOW server_version`);
    const text = renderPlans(
      [
        `EXPLAIN (ANALYZE, BUFFERS) of agentq's hot statements, ${new Date().toISOString()}`,
        `PostgreSQL ${versionRow?.server_version ?? '?'}; ${largest.history.toLocaleString('en-US')} tasks and ` +
          `${largest.events.toLocaleString('en-US')} events in the tables when the last drain started ` +
          `(its ${ctx.tasks} tasks came on top).`,
        `Run in one transaction that is rolled back; the batch statements on ${Math.min(ctx.concurrency, 50)} fresh tasks.`,
      ],
      plans,
    );
    await writeFile(EXPLAIN_PATH, `${text}\n`);
    explainPath = EXPLAIN_PATH;
  }
  // Partitioned tables: their size is their partitions'.
  const sizesMb = await monitor.query<{ name: string; mb: number }>(
    `SELECT name, (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(('agentq.' || name)::regclass))::float8 / 1048576 AS mb
     FROM unnest(ARRAY['tasks', 'task_events']) name`,
  );
  let queueStatsMs: number | undefined;
  let retention: RetentionStep | undefined;
  if (largest && largest.history > 0) {
    const t0 = performance.now();
    await monitor.query('SELECT * FROM agentq.queue_stats');
    queueStatsMs = performance.now() - t0;
    const tasksBefore = (await counts(monitor)).tasks;
    const report = await runRetention({ pool, retentionDays: RETENTION_DAYS });
    const tasksAfter = (await counts(monitor)).tasks;
    retention = {
      ms: report.ms,
      dropped: report.dropped,
      deletedTasks: report.deletedTasks,
      tasksBefore,
      tasksAfter,
    };
    ctx.log(
      `history: retention run ${report.ms} ms: dropped ${report.dropped.join(', ') || 'nothing'}, ` +
        `deleted ${report.deletedTasks} tasks; ${tasksBefore} tasks before, ${tasksAfter} after`,
    );
  }
  return {
    steps,
    explainPath,
    tableMb: Object.fromEntries(sizesMb.map((r) => [r.name, r.mb])),
    queueStatsMs,
    retention,
  };
}
