/**
 * The submit phase of the benchmark (run last, on drained queues):
 *   - batch submit throughput: N tasks as POST /v1/tasks/batch requests of
 *     `batchSize` over HTTP, one after another, beside raw graphile-worker
 *     inserting the same number of jobs with one add_jobs call per batch;
 *   - commits per submit: N single POST /v1/tasks over HTTP (the API's LISTEN
 *     connection open, as in production) beside N single add_job calls, and
 *     commits per batch on both sides, from pg_stat_database.
 * Nothing runs the queues here: each side is purged afterwards.
 */
import type pg from 'pg';
import type { Config } from '../shared/config.ts';
import { createPool } from '../shared/db/database.ts';
import { benchPrompt, enqueueOverHttp, purgeTasks, startBenchApi } from './agentq.ts';
import type { HttpClient } from './http-client.ts';
import { secondsSince } from './measure.ts';
import type { Monitor, WriteCounters } from './monitor.ts';
import { purgeJobs, rawEnqueue } from './raw.ts';
import { row, type Row } from './report.ts';

export interface SubmitPhaseOptions {
  rawUrl: string;
  aqUrl: string;
  rawMonitor: Monitor;
  aqMonitor: Monitor;
  config: Config;
  /** Closes every other connection the benchmark holds, so the counters are complete. */
  closeClients: () => Promise<void>;
  /** Tasks submitted in batches, per side. */
  batchTasks: number;
  batchSize: number;
  /** Single submits whose commits are counted, per side. */
  singleTasks: number;
  enqueueClients: number;
  poolMax: number;
  log: (line: string) => void;
}

export interface SubmitPhaseResult {
  rows: Row[];
  details: Record<string, unknown>;
  notes: string[];
}

const ADD_JOBS = `
  SELECT count(*) AS n FROM graphile_worker.add_jobs((
    SELECT array_agg(ROW('noop', p, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)
    FROM unnest($1::json[]) p))`;

/** One add_jobs call per batch, payloads built here as the HTTP side builds its bodies. */
async function rawBatches(pool: pg.Pool, n: number, size: number): Promise<void> {
  for (let start = 0; start < n; start += size) {
    const payloads = Array.from({ length: Math.min(size, n - start) }, (_, i) =>
      JSON.stringify({ i: start + i }),
    );
    await pool.query(ADD_JOBS, [payloads]);
  }
}

async function httpBatches(client: HttpClient, n: number, size: number): Promise<void> {
  for (let start = 0; start < n; start += size) {
    const tasks = Array.from({ length: Math.min(size, n - start) }, (_, i) => ({
      input: { prompt: benchPrompt(start + i) },
    }));
    const res = await client.request('POST', '/v1/tasks/batch', { tasks });
    if (res.status !== 201) {
      throw new Error(
        `POST /v1/tasks/batch: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`,
      );
    }
  }
}

interface Counted {
  seconds: number;
  commits: number;
  rowWrites: number;
}

/**
 * Runs `work` between two complete counter readings (every other connection
 * closed). `work` opens what it needs, times its own span (set-up, such as an
 * API start, outside it) and returns how to close.
 */
async function counted(
  monitor: Monitor,
  closeClients: () => Promise<void>,
  work: () => Promise<{ seconds: number; close: () => Promise<void> }>,
): Promise<Counted> {
  await closeClients();
  const before: WriteCounters = await monitor.writeCounters();
  const { seconds, close } = await work();
  await close();
  const after = await monitor.writeCounters();
  const own = after.monitorQueries - before.monitorQueries;
  return {
    seconds,
    commits: after.commits - before.commits - own,
    rowWrites:
      after.inserted -
      before.inserted +
      (after.updated - before.updated) +
      (after.deleted - before.deleted),
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return secondsSince(start);
}

export async function measureSubmits(o: SubmitPhaseOptions): Promise<SubmitPhaseResult> {
  const rawPool = async () => {
    const pool = createPool({
      connectionString: o.rawUrl,
      applicationName: 'agentq-bench-raw-client',
      max: o.poolMax,
    });
    await pool.query('SELECT 1'); // connected before the clock starts
    return pool;
  };
  const aqPool = () =>
    createPool({ connectionString: o.aqUrl, applicationName: 'agentq-bench-aq-client', max: 2 });
  const purgeRaw = async () => {
    const pool = await rawPool();
    await purgeJobs(pool);
    await pool.query('VACUUM ANALYZE');
    await pool.end();
  };
  const purgeAgentq = async () => {
    const pool = aqPool();
    await purgeTasks(pool);
    await pool.query('VACUUM ANALYZE');
    await pool.end();
  };
  const warmup = Math.min(o.batchSize, o.batchTasks);

  // Raw graphile-worker: add_jobs per batch, then add_job per job.
  o.log('phase 4: submit (raw add_jobs batches, add_job commits)');
  {
    const pool = await rawPool();
    await rawBatches(pool, warmup, o.batchSize);
    await pool.end();
    await purgeRaw();
  }
  const rawBatch = await counted(o.rawMonitor, o.closeClients, async () => {
    const pool = await rawPool();
    const seconds = await timed(() => rawBatches(pool, o.batchTasks, o.batchSize));
    return { seconds, close: () => pool.end() };
  });
  await purgeRaw();
  const rawSingle = await counted(o.rawMonitor, o.closeClients, async () => {
    const pool = await rawPool();
    const seconds = await timed(() => rawEnqueue(pool, 'noop', o.singleTasks, o.enqueueClients));
    return { seconds, close: () => pool.end() };
  });
  await purgeRaw();

  // agentq over HTTP: the API with its LISTEN connection, no worker.
  o.log('phase 4: submit (agentq POST /v1/tasks/batch, POST /v1/tasks commits)');
  {
    const api = await startBenchApi(o.config, o.aqUrl, 1);
    await httpBatches(api.client, warmup, o.batchSize);
    await api.stop();
    await purgeAgentq();
  }
  // The API's start (a few statements) is counted, not timed.
  const aqBatch = await counted(o.aqMonitor, o.closeClients, async () => {
    const api = await startBenchApi(o.config, o.aqUrl, 1);
    const seconds = await timed(() => httpBatches(api.client, o.batchTasks, o.batchSize));
    return { seconds, close: () => api.stop() };
  });
  await purgeAgentq();
  const aqSingle = await counted(o.aqMonitor, o.closeClients, async () => {
    const api = await startBenchApi(o.config, o.aqUrl, o.enqueueClients);
    const seconds = await timed(() => enqueueOverHttp(api.client, o.singleTasks, o.enqueueClients));
    return { seconds, close: () => api.stop() };
  });
  await purgeAgentq();

  const batches = Math.ceil(o.batchTasks / o.batchSize);
  const SUB = `submit: ${o.batchTasks} tasks in batches of ${o.batchSize}, ${o.singleTasks} single submits`;
  const rows: Row[] = [
    row(
      SUB,
      `batch  add_jobs  |  POST /v1/tasks/batch`,
      'tasks/s',
      'higher',
      o.batchTasks / rawBatch.seconds,
      o.batchTasks / aqBatch.seconds,
    ),
    row(
      SUB,
      `commits per batch  (add_jobs  |  batch over HTTP)`,
      'per task',
      'info',
      rawBatch.commits / batches,
      aqBatch.commits / batches,
    ),
    row(
      SUB,
      `commits per single submit  (add_job  |  POST /v1/tasks)`,
      'per task',
      'info',
      rawSingle.commits / o.singleTasks,
      aqSingle.commits / o.singleTasks,
    ),
    row(
      SUB,
      `rows written per single submit  (add_job  |  POST /v1/tasks)`,
      'per task',
      'info',
      rawSingle.rowWrites / o.singleTasks,
      aqSingle.rowWrites / o.singleTasks,
    ),
  ];
  const notes = [
    `Submit phase (run on drained queues, no worker): batches are sent one after another, ${o.batchSize} tasks each; ` +
      `the raw side makes one add_jobs call per batch over a pool, agentq one POST /v1/tasks/batch over HTTP (one ` +
      `statement: add_jobs plus the task rows). Commits come from pg_stat_database: agentq's include the API's LISTEN ` +
      `connection reading each notifying commit, and the API's own start-up statements.`,
  ];
  return {
    rows,
    notes,
    details: {
      submit: {
        batch_tasks: o.batchTasks,
        batch_size: o.batchSize,
        single_tasks: o.singleTasks,
        raw_batch: rawBatch,
        agentq_batch: aqBatch,
        raw_single: rawSingle,
        agentq_single: aqSingle,
      },
    },
  };
}
