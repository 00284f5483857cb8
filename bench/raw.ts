/**
 * The baseline: graphile-worker 0.17 used directly, as its README shows, on a
 * database of its own. Three task kinds:
 *   noop        does nothing: the queue's own ceiling;
 *   comparable  makes the same database writes an agentq task makes while it
 *               runs (see COMPARABLE_STEPS), without agentq's logic, so the
 *               ratio against it shows what the agent loop, triggers,
 *               notifications and bookkeeping cost beyond the writes;
 *   latency     resolves a promise the submitter waits on.
 */
import { Logger, run, type Runner, type Task, type TaskList } from 'graphile-worker';
import type pg from 'pg';
import { createPool } from '../shared/db/database.ts';
import { runConcurrently } from './measure.ts';

/** graphile-worker's own log lines: errors only (a failing handler must not pass unnoticed). */
export const benchGraphileLogger = new Logger(() => (level, message) => {
  if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
});

export function startRawRunner(
  pool: pg.Pool,
  concurrency: number,
  taskList: TaskList,
): Promise<Runner> {
  return run({
    pgPool: pool,
    concurrency,
    taskList,
    noHandleSignals: true,
    pollInterval: 1000, // agentq's default AGENTQ_POLL_INTERVAL_MS; new jobs arrive by NOTIFY either way
    logger: benchGraphileLogger,
  });
}

/** `max` is the size agentq's pools get (AGENTQ_DB_POOL_MAX), so both sides have the same connections. */
export function createRawWorkerPool(url: string, max: number): pg.Pool {
  return createPool({ connectionString: url, applicationName: 'agentq-bench-raw-worker', max });
}

const ADD_JOB = `SELECT graphile_worker.add_job($1::text, json_build_object('i', $2::int))`;

/** N single-statement add_job calls (each its own transaction), `clients` at a time. */
export async function rawEnqueue(
  pool: pg.Pool,
  identifier: string,
  n: number,
  clients: number,
): Promise<void> {
  await runConcurrently(n, clients, async (i) => {
    await pool.query(ADD_JOB, [identifier, i]);
  });
}

/** Deletes every (unlocked) job, through graphile-worker's own function. */
export async function purgeJobs(pool: pg.Pool): Promise<void> {
  await pool.query(`SELECT graphile_worker.complete_jobs(array_agg(id)) FROM graphile_worker.jobs`);
}

/** Done when the queue is empty: graphile-worker deletes a job once it has completed. */
export const RAW_REMAINING_SQL = `SELECT count(*) AS n FROM graphile_worker.jobs`;

/** For a timed-out phase's message. */
export const RAW_STATE_SQL = `
  SELECT count(*) AS jobs, count(locked_by) AS locked, max(attempts) AS max_attempts, max(last_error) AS last_error
  FROM graphile_worker.jobs`;

// --- comparable work -------------------------------------------------------

/**
 * What an agentq task writes while it runs with the offline provider on an
 * arithmetic prompt: the claim (status → running, plus its status event),
 * six step events (llm_call, tool_call, tool_result, llm_call, message,
 * answer), and the fenced finish (status → completed, plus its status event).
 * agentq makes each one statement that updates the task row and inserts one
 * event, in its own transaction; so does this: 8 commits, 8 row updates and
 * 8 inserts per job, beside graphile-worker's own fetch and completion.
 */
const COMPARABLE_STEPS = [
  'status',
  'llm_call',
  'tool_call',
  'tool_result',
  'llm_call',
  'message',
  'answer',
  'status',
] as const;

export async function createComparableSchema(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE SCHEMA bench;
    CREATE TABLE bench.runs (
      id int PRIMARY KEY,
      status text NOT NULL DEFAULT 'queued',
      last_seq int NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE bench.run_events (
      run_id int NOT NULL REFERENCES bench.runs (id) ON DELETE CASCADE,
      seq int NOT NULL,
      type text NOT NULL,
      data jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      PRIMARY KEY (run_id, seq)
    );`);
}

/** One row per job to update, and the jobs: untimed set-up, one statement each. */
export async function prefillComparable(pool: pg.Pool, n: number): Promise<void> {
  await pool.query(`INSERT INTO bench.runs (id) SELECT generate_series(0, $1::int - 1)`, [n]);
  await pool.query(
    `SELECT count(graphile_worker.add_job('comparable', json_build_object('i', i))) FROM generate_series(0, $1::int - 1) i`,
    [n],
  );
}

const COMPARABLE_STEP_SQL = `
  WITH r AS (
    UPDATE bench.runs SET last_seq = last_seq + 1, status = $2, updated_at = now()
    WHERE id = $1 RETURNING id, last_seq
  )
  INSERT INTO bench.run_events (run_id, seq, type, data)
  SELECT id, last_seq, $3, $4::jsonb FROM r`;

export function comparableTask(pool: pg.Pool): Task {
  return async (payload) => {
    const id = (payload as { i: number }).i;
    for (const [step, type] of COMPARABLE_STEPS.entries()) {
      const status = step === COMPARABLE_STEPS.length - 1 ? 'completed' : 'running';
      // About the size of agentq's step events.
      const data = {
        step,
        type,
        status,
        latency_ms: 0,
        note: 'comparable-work baseline: agentq writes without agentq',
      };
      await pool.query(COMPARABLE_STEP_SQL, [id, status, type, JSON.stringify(data)]);
    }
  };
}

export async function verifyComparable(pool: pg.Pool, n: number): Promise<void> {
  const { rows } = await pool.query<{ completed: number; events: number }>(
    `SELECT (SELECT count(*) FROM bench.runs WHERE status = 'completed') AS completed,
            (SELECT count(*) FROM bench.run_events) AS events`,
  );
  const row = rows[0]!;
  if (row.completed !== n || row.events !== n * COMPARABLE_STEPS.length) {
    throw new Error(
      `comparable baseline: ${row.completed}/${n} runs completed, ${row.events} events`,
    );
  }
}

// --- latency ---------------------------------------------------------------

/**
 * Sequential add_job → handler runs, with an idle runner already started.
 * Returns milliseconds per sample (the first `warmup` are not kept).
 */
export async function rawLatency(
  clientPool: pg.Pool,
  workerPool: pg.Pool,
  concurrency: number,
  samples: number,
  warmup: number,
): Promise<number[]> {
  const waiters = new Map<number, () => void>();
  const runner = await startRawRunner(workerPool, concurrency, {
    latency: async (payload) => {
      waiters.get((payload as { i: number }).i)?.();
    },
  });
  try {
    const out: number[] = [];
    for (let i = 0; i < warmup + samples; i++) {
      let timer: NodeJS.Timeout | undefined;
      const ran = new Promise<void>((resolve, reject) => {
        waiters.set(i, resolve);
        timer = setTimeout(
          () => reject(new Error(`raw latency: job ${i} did not run within 30 s`)),
          30_000,
        );
      });
      const start = performance.now();
      await clientPool.query(ADD_JOB, ['latency', i]);
      await ran.finally(() => clearTimeout(timer));
      const ms = performance.now() - start;
      waiters.delete(i);
      if (i >= warmup) out.push(ms);
    }
    return out;
  } finally {
    await runner.stop();
  }
}
