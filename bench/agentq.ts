/**
 * agentq's side of the benchmark, through its own entry points: startApi and
 * POST /v1/tasks over real HTTP, taskInsertWithJob without HTTP, startWorker
 * with the offline provider, and GET /v1/tasks/:id?wait=… long-polls.
 */
import { uuidv7 } from 'uuidv7';
import type pg from 'pg';
import { startApi, type RunningApi } from '../api/server.ts';
import { loadConfig, type Config } from '../shared/config.ts';
import { createPool, type Db } from '../shared/db/database.ts';
import { createLogger } from '../shared/logger.ts';
import { resolveAgentConfig } from '../shared/tasks/agent-config.ts';
import { taskInsertWithJob } from '../shared/tasks/task-queries.ts';
import { startWorker, type RunningWorker } from '../worker/worker.ts';
import { httpClient, type HttpClient } from './http-client.ts';
import { runConcurrently } from './measure.ts';

const silent = createLogger('bench', 'silent');

/**
 * The real config loader over a fixed environment: offline provider, no logs,
 * any free port, and the pool size the raw side gets too.
 */
export function benchConfig(databaseUrl: string, concurrency: number, poolMax: number): Config {
  // process.env is left out on purpose: a provider key there must not turn
  // the benchmark into a paid, network-bound run.
  return loadConfig({
    DATABASE_URL: databaseUrl,
    AGENTQ_DEFAULT_PROVIDER: 'offline',
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: '0', // the OS picks a free port; startApi reports the URL
    AGENTQ_WORKER_CONCURRENCY: String(concurrency),
    AGENTQ_POLL_INTERVAL_MS: '1000',
    // api/main.ts and worker/main.ts size their pools with this.
    AGENTQ_DB_POOL_MAX: String(poolMax),
  });
}

/**
 * An arithmetic prompt: the offline provider answers it with one calculator
 * call and a second turn (2 LLM turns, 1 tool call, 9 events per task).
 */
export const benchPrompt = (i: number) => `What is ${17 + (i % 83)} * ${23 + (i % 7)}?`;

export interface ApiHandle {
  api: RunningApi;
  client: HttpClient;
  stop(): Promise<void>;
}

export async function startBenchApi(
  config: Config,
  url: string,
  clientSockets: number,
): Promise<ApiHandle> {
  const pool = createPool({
    connectionString: url,
    applicationName: 'agentq-bench-api',
    max: config.dbPoolMax,
  });
  let api: RunningApi;
  try {
    api = await startApi({ config, pool, connectionString: url, logger: silent });
  } catch (err) {
    await pool.end();
    throw err;
  }
  const client = httpClient(api.url, clientSockets);
  return {
    api,
    client,
    async stop() {
      client.close();
      await api.stop();
      await pool.end();
    },
  };
}

export interface WorkerHandle {
  worker: RunningWorker;
  stop(): Promise<void>;
}

export async function startBenchWorker(config: Config, url: string): Promise<WorkerHandle> {
  const pool = createPool({
    connectionString: url,
    applicationName: 'agentq-bench-worker',
    max: config.dbPoolMax,
  });
  let worker: RunningWorker;
  try {
    worker = await startWorker({ config, pool, connectionString: url, logger: silent });
  } catch (err) {
    await pool.end();
    throw err;
  }
  return {
    worker,
    async stop() {
      await worker.stop();
      await pool.end();
    },
  };
}

interface SubmittedTask {
  id: string;
  status: string;
}

export async function submitOverHttp(client: HttpClient, i: number): Promise<SubmittedTask> {
  const res = await client.request('POST', '/v1/tasks', { input: { prompt: benchPrompt(i) } });
  if (res.status !== 201)
    throw new Error(`POST /v1/tasks: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as SubmittedTask;
}

/** N submits over HTTP, `clients` requests in flight. */
export async function enqueueOverHttp(
  client: HttpClient,
  n: number,
  clients: number,
): Promise<void> {
  await runConcurrently(n, clients, async (i) => {
    await submitOverHttp(client, i);
  });
}

/** N inserts through the same function the route calls, `clients` at a time: the API minus HTTP. */
export async function enqueueDirect(
  db: Db,
  config: Config,
  n: number,
  clients: number,
): Promise<void> {
  // What the route stores for a body with only input.prompt (the schema's defaults).
  const agentConfig = resolveAgentConfig(
    {},
    { provider: config.defaultProvider, model: config.defaultModel },
  );
  await runConcurrently(n, clients, async (i) => {
    const row = await taskInsertWithJob(db, {
      id: uuidv7(),
      type: 'agent',
      input: { prompt: benchPrompt(i) },
      config: agentConfig,
      maxAttempts: 3,
      priority: 0,
      timeoutMs: 300_000,
      runAt: null,
      metadata: {},
      idempotencyKey: null,
      requestHash: null,
    });
    if (!row) throw new Error('taskInsertWithJob returned nothing');
  });
}

/** Removes every task and job (after a warm-up or the no-HTTP run), so each timed run starts equal. */
export async function purgeTasks(pool: pg.Pool): Promise<void> {
  await pool.query(`SELECT graphile_worker.complete_jobs(array_agg(id)) FROM graphile_worker.jobs`);
  await pool.query(`DELETE FROM agentq.tasks`); // task_events cascade
}

/** Tasks not yet terminal plus jobs not yet deleted: done at zero, like the raw side's empty queue. */
export const AGENTQ_REMAINING_SQL = `
  SELECT (SELECT count(*) FROM agentq.tasks WHERE status IN ('queued', 'running'))
       + (SELECT count(*) FROM graphile_worker.jobs) AS n`;

/** For a timed-out phase's message. */
export const AGENTQ_STATE_SQL = `
  SELECT status, count(*) AS tasks, max(attempts) AS max_attempts, max(error->>'code') AS error_code,
         (SELECT count(*) FROM graphile_worker.jobs) AS jobs,
         (SELECT count(locked_by) FROM graphile_worker.jobs) AS locked_jobs
  FROM agentq.tasks GROUP BY status`;

export interface ExecutionCheck {
  tasks: number;
  completed: number;
  answered: number;
  events: number;
}

export async function checkExecution(pool: pg.Pool): Promise<ExecutionCheck> {
  const { rows } = await pool.query<ExecutionCheck>(`
    SELECT count(*) AS tasks,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE result->>'answer' LIKE 'The answer is %') AS answered,
           (SELECT count(*) FROM agentq.task_events) AS events
    FROM agentq.tasks`);
  return rows[0]!;
}

export interface LatencyRun {
  /** POST sent → terminal status returned by the long-poll, ms. */
  endToEnd: number[];
  /** POST sent → 201 received, ms. */
  submit: number[];
  /** created_at → started_at, from the rows: queue pick-up and claim, ms. */
  pickup: number[];
  /** started_at → finished_at, from the rows: the agent run and its writes, ms. */
  run: number[];
}

/** Sequential submit → long-poll until terminal, with an idle worker already running. */
export async function agentqLatency(
  client: HttpClient,
  pool: pg.Pool,
  samples: number,
  warmup: number,
): Promise<LatencyRun> {
  const endToEnd: number[] = [];
  const submit: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const start = performance.now();
    const task = await submitOverHttp(client, i);
    const submitted = performance.now();
    const res = await client.request('GET', `/v1/tasks/${task.id}?wait=30`);
    const done = performance.now();
    const status = (res.body as SubmittedTask | null)?.status;
    if (res.status !== 200 || status !== 'completed') {
      throw new Error(
        `agentq latency: task ${task.id} ended ${res.status} ${status ?? JSON.stringify(res.body)}`,
      );
    }
    if (i < warmup) continue;
    endToEnd.push(done - start);
    submit.push(submitted - start);
    ids.push(task.id);
  }
  const { rows } = await pool.query<{ pickup: number; run: number }>(
    `SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 AS pickup,
            extract(epoch FROM finished_at - started_at)::float8 * 1000 AS run
     FROM agentq.tasks WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return { endToEnd, submit, pickup: rows.map((r) => r.pickup), run: rows.map((r) => r.run) };
}
