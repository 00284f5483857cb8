/**
 * End to end: `clients` concurrent submitters each sending one task at a time
 * while one worker (its own process) at the bench concurrency drains, timed
 * from the first submit to the moment nothing is left to do.
 *
 *   agentq  POST /v1/tasks over real HTTP to the API process (api/main.ts),
 *           offline provider, worker process (worker/main.ts);
 *   raw     single add_job statements from this process, a raw graphile-worker
 *           runner process (raw-runner-main.ts) with no-op jobs.
 *
 * Each side gets a fresh database. Commits and row writes per task come from
 * pg_stat_database over the whole life of the processes (start-up, the
 * untimed warm-up and the timed run; listeners included), divided by every
 * task they handled: the counters are only complete once every connection has
 * closed (see Monitor.writeCounters).
 */
import type pg from 'pg';
import { AGENTQ_REMAINING_SQL, submitOverHttp } from './agentq.ts';
import type { PhaseContext } from './context.ts';
import { httpClient } from './http-client.ts';
import {
  pollUntil,
  runConcurrently,
  secondsSince,
  summarize,
  type LatencySummary,
} from './measure.ts';
import { Monitor, type WritesPerTask } from './monitor.ts';
import {
  sampleProcessMemory,
  startApiChild,
  startRawRunnerChild,
  startWorkerChild,
  type BenchChild,
  type ProcessMemory,
} from './processes.ts';
import { monotonicUs } from './profiles.ts';
import { createRawWorkerPool, RAW_REMAINING_SQL } from './raw.ts';

export interface EndToEndSide {
  seconds: number;
  tasksPerSecond: number;
  /** agentq: created_at → finished_at from the rows; raw: add_job sent → handler ran. */
  latencyMs: LatencySummary;
  writes: WritesPerTask;
  workerMemory: ProcessMemory;
  /** Tasks the processes handled in all (warm-up + timed), the divisor of `writes`. */
  handled: number;
  /** The timed part on the monotonic clock (µs), to cut it out of the CPU profiles. */
  windowUs: [number, number];
}

export interface EndToEndResult {
  clients: number;
  warmup: number;
  raw: EndToEndSide;
  agentq: EndToEndSide;
  /** The agentq database, left for the read-load phase. */
  agentqUrl: string;
  /** CPU profiles written, when asked for, with the timed part of their side. */
  profiled: Array<{ name: string; windowUs: [number, number] }>;
}

/** The environment agentq's processes get (both read it through loadConfig). */
export function agentqEnv(url: string, concurrency: number, poolMax: number) {
  return {
    DATABASE_URL: url,
    AGENTQ_DEFAULT_PROVIDER: 'offline',
    AGENTQ_WORKER_CONCURRENCY: String(concurrency),
    AGENTQ_POLL_INTERVAL_MS: '1000',
    AGENTQ_DB_POOL_MAX: String(poolMax),
  };
}

/** Asks the monitor whether the worker with this pid has registered (see startWorkerChild). */
export const workerRegistered = (monitor: Monitor) => async (pid: number) =>
  (await monitor.count(`SELECT count(*) AS n FROM agentq.workers WHERE pid = $1`, [pid])) > 0;

async function drained(ctx: PhaseContext, monitor: Monitor, sql: string, what: string) {
  await pollUntil(async () => (await monitor.count(sql)) === 0, {
    intervalMs: ctx.donePollMs,
    timeoutMs: ctx.phaseTimeoutMs,
    what,
  });
}

async function stopAll(children: BenchChild[]) {
  for (const child of children.reverse()) await child.stop();
}

async function agentqSide(
  ctx: PhaseContext,
  clients: number,
  warmup: number,
  cpuProfile: boolean,
  profiled: EndToEndResult['profiled'],
): Promise<EndToEndSide & { url: string }> {
  const url = await ctx.pg.createMigratedDatabase(`agentq_bench_e2e_aq_${process.pid}`);
  const monitor = await Monitor.connect(url);
  const closeMonitor = ctx.onCleanup('e2e agentq monitor', () => monitor.close());
  const before = await monitor.writeCounters();
  const env = agentqEnv(url, ctx.concurrency, ctx.poolMax);
  const children: BenchChild[] = [];
  const stopChildren = ctx.onCleanup('e2e agentq processes', () => stopAll(children));
  const api = await startApiChild(env, cpuProfile);
  children.push(api);
  const worker = await startWorkerChild(env, workerRegistered(monitor), cpuProfile);
  children.push(worker);
  const memory = sampleProcessMemory(worker.pid);
  const http = httpClient(api.url, clients);
  let seconds: number;
  const windowUs: [number, number] = [0, 0];
  const ids: string[] = [];
  try {
    // Untimed: the processes' JIT and connections warm up on the same path.
    await runConcurrently(warmup, clients, async (i) => {
      await submitOverHttp(http, i);
    });
    await drained(ctx, monitor, AGENTQ_REMAINING_SQL, 'the e2e warm-up to drain');

    windowUs[0] = monotonicUs();
    const start = performance.now();
    await runConcurrently(ctx.tasks, clients, async (i) => {
      ids.push((await submitOverHttp(http, warmup + i)).id);
    });
    await drained(ctx, monitor, AGENTQ_REMAINING_SQL, 'agentq end-to-end tasks to complete');
    seconds = secondsSince(start);
    windowUs[1] = monotonicUs();
  } finally {
    http.close();
  }
  const workerMemory = await memory.stop();
  const rows = await monitor.query<{ ms: number; status: string }>(
    `SELECT status, extract(epoch FROM finished_at - created_at)::float8 * 1000 AS ms
     FROM agentq.tasks WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const notDone = rows.filter((r) => r.status !== 'completed').length;
  if (rows.length !== ctx.tasks || notDone > 0) {
    throw new Error(`agentq end to end: ${rows.length - notDone}/${ctx.tasks} tasks completed`);
  }
  await stopChildren();
  for (const c of children) if (cpuProfile) profiled.push({ name: c.name, windowUs });
  const after = await monitor.writeCounters();
  const handled = warmup + ctx.tasks;
  await closeMonitor();
  return {
    url,
    seconds,
    tasksPerSecond: ctx.tasks / seconds,
    latencyMs: summarize(rows.map((r) => r.ms)),
    writes: Monitor.perTask(before, after, handled),
    workerMemory,
    handled,
    windowUs,
  };
}

const ADD_JOB_TIMED = `SELECT graphile_worker.add_job('noop', json_build_object('i', $1::int, 't', $2::float8))`;

async function rawSide(
  ctx: PhaseContext,
  clients: number,
  warmup: number,
  cpuProfile: boolean,
  profiled: EndToEndResult['profiled'],
): Promise<EndToEndSide> {
  const url = await ctx.pg.createMigratedDatabase(`agentq_bench_e2e_raw_${process.pid}`);
  const monitor = await Monitor.connect(url);
  const closeMonitor = ctx.onCleanup('e2e raw monitor', () => monitor.close());
  const before = await monitor.writeCounters();
  const runner = await startRawRunnerChild(
    {
      DATABASE_URL: url,
      BENCH_RAW_CONCURRENCY: String(ctx.concurrency),
      BENCH_RAW_POOL_MAX: String(ctx.poolMax),
    },
    cpuProfile,
  );
  const stopRunner = ctx.onCleanup('e2e raw runner', async () => {
    await runner.stop();
  });
  const memory = sampleProcessMemory(runner.pid);
  // The submitters' own pool: one connection per client, like one socket per HTTP client.
  const pool: pg.Pool = createRawWorkerPool(url, clients);
  const wallClock = () => performance.timeOrigin + performance.now();
  let seconds: number;
  const windowUs: [number, number] = [0, 0];
  try {
    await runConcurrently(warmup, clients, async (i) => {
      await pool.query(ADD_JOB_TIMED, [i, wallClock()]);
    });
    await drained(ctx, monitor, RAW_REMAINING_SQL, 'the raw e2e warm-up to drain');
    windowUs[0] = monotonicUs();
    const start = performance.now();
    await runConcurrently(ctx.tasks, clients, async (i) => {
      await pool.query(ADD_JOB_TIMED, [warmup + i, wallClock()]);
    });
    await drained(ctx, monitor, RAW_REMAINING_SQL, 'raw end-to-end jobs to complete');
    seconds = secondsSince(start);
    windowUs[1] = monotonicUs();
  } finally {
    await pool.end();
  }
  const workerMemory = await memory.stop();
  await stopRunner();
  if (cpuProfile) profiled.push({ name: runner.name, windowUs });
  const line = runner
    .output()
    .split('\n')
    .find((l) => l.startsWith('{"latencies"'));
  const latencies = line ? (JSON.parse(line) as { latencies: number[] }).latencies : [];
  const after = await monitor.writeCounters();
  await closeMonitor();
  const handled = warmup + ctx.tasks;
  return {
    seconds,
    tasksPerSecond: ctx.tasks / seconds,
    // The timed jobs only (the warm-up's come first in arrival order, roughly).
    latencyMs: summarize(latencies.slice(-ctx.tasks)),
    writes: Monitor.perTask(before, after, handled),
    workerMemory,
    handled,
    windowUs,
  };
}

export async function endToEnd(
  ctx: PhaseContext,
  clients: number,
  cpuProfile: boolean,
): Promise<EndToEndResult> {
  const warmup = Math.min(200, ctx.tasks);
  const profiled: EndToEndResult['profiled'] = [];
  ctx.log(`end to end (raw): ${clients} add_job clients, no-op runner process`);
  const raw = await rawSide(ctx, clients, warmup, cpuProfile, profiled);
  ctx.log(`end to end (agentq): ${clients} HTTP clients, API and worker processes`);
  const { url, ...agentq } = await agentqSide(ctx, clients, warmup, cpuProfile, profiled);
  return { clients, warmup, raw, agentq, agentqUrl: url, profiled };
}
