/**
 * `node --import tsx bench/retention.ts`: the time of one retention run that
 * drops whole days, with BENCH_RETENTION_TASKS finished tasks (default 1M,
 * BENCH_RETENTION_EVENTS events each, default 1) in days past the 30-day
 * horizon. Needs DATABASE_URL (a superuser: the rows are bulk-loaded with
 * triggers off, as bench/history.ts does); makes and drops a database of its
 * own. Prints the run's report and the table sizes before it.
 */
import pg from 'pg';
import { createPool } from '../shared/db/database.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { runRetention } from '../shared/db/partitions.ts';
import { uuid7Sql } from './fill.ts';

const admin = process.env.DATABASE_URL;
if (!admin) throw new Error('set DATABASE_URL');
const tasks = Number(process.env.BENCH_RETENTION_TASKS ?? 1_000_000);
const events = Number(process.env.BENCH_RETENTION_EVENTS ?? 1);
const name = `agentq_bench_retention_${process.pid}`;
const url = new URL(admin);
url.pathname = `/${name}`;

const a = new pg.Client({ connectionString: admin });
await a.connect();
await a.query(`CREATE DATABASE ${name}`);
const pool = createPool({ connectionString: url.toString(), applicationName: 'bench', max: 2 });
try {
  await migrateDatabase(pool);
  await pool.query(`DROP TABLE agentq.task_events_history, agentq.tasks_history`);
  await pool.query(`SELECT agentq.create_partitions(now() - interval '45 days', now())`);
  const client = await pool.connect();
  try {
    await client.query(`SET session_replication_role = replica`);
    // Spread over days 40 to 35 ago, one task per 300 ms.
    const base = Date.now() - 40 * 86_400_000;
    for (let done = 0; done < tasks; done += 100_000) {
      const n = Math.min(100_000, tasks - done);
      await client.query(
        `WITH t AS (
           INSERT INTO agentq.tasks (id, type, status, input, config, result, attempts, claim,
             last_event_seq, created_at, started_at, finished_at)
           SELECT ${uuid7Sql('$1::bigint + g * 300')}, 'agent', 'completed',
                  '{"prompt":"What is 17 * 23?"}', '{"provider":"offline"}', '{"answer":"391"}',
                  1, 1, $3::int, now(), now(), now()
           FROM generate_series($2::int, $2::int + $4::int - 1) g
           RETURNING id
         )
         INSERT INTO agentq.task_events (task_id, seq, type, data)
         SELECT t.id, s, 'message', '{"text":"a step of the agent"}'
         FROM t, generate_series(1, $3::int) s`,
        [base, done, events, n],
      );
    }
    await client.query(`RESET session_replication_role`);
    await client.query(`VACUUM ANALYZE agentq.tasks`);
    await client.query(`VACUUM ANALYZE agentq.task_events`);
    await client.query(`CHECKPOINT`);
  } finally {
    client.release();
  }
  const { rows: size } = await pool.query<{ tasks: number; mb: number }>(
    `SELECT (SELECT count(*) FROM agentq.tasks)::int AS tasks,
            (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('agentq.tasks'))::float8 / 1048576
          + (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('agentq.task_events'))::float8 / 1048576 AS mb`,
  );
  const t0 = performance.now();
  const report = await runRetention({ pool, retentionDays: 30 });
  const ms = performance.now() - t0;
  const { rows: after } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM agentq.tasks`,
  );
  process.stdout.write(
    `${JSON.stringify({ before: size[0], after: after[0]!.n, wallMs: Math.round(ms), report })}\n`,
  );
} finally {
  await pool.end();
  await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await a.end();
}
