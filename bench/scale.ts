/**
 * Phase "scale": end-to-end throughput with 1, 2 and 3 worker processes and 1
 * or 2 API processes on one Postgres, beside raw graphile-worker with 1, 2
 * and 3 runner processes, with the evidence of where the limit is: commits per
 * second and per task (pg_stat_database), CPU of each process (/proc), of the
 * whole Postgres server and of the submitters in this process.
 *
 *   agentq  `clients` HTTP submitters spread round-robin over the API
 *           processes (api/main.ts), offline provider, worker processes
 *           (worker/main.ts) at the bench concurrency each;
 *   raw     `clients` add_job callers from this process, no-op raw runner
 *           processes (raw-runner-main.ts) at the same concurrency each.
 *
 * Each configuration gets a fresh database, an untimed warm-up through the
 * same processes, then `tasks` timed tasks from the first submit until
 * nothing is left. Commits per second are read live from pg_stat_database
 * (a busy backend publishes its counters about once a second, so the window's
 * edges are blurred by up to a second's worth); commits per task come from the
 * complete counters after every process has exited (start-up and warm-up
 * included, over every task handled), as in the end-to-end phase.
 */
import type pg from 'pg';
import { AGENTQ_REMAINING_SQL, benchPrompt } from './agentq.ts';
import type { PhaseContext } from './context.ts';
import { parentPid, postgresCpuMs, processCpuMs } from './cpu-time.ts';
import { agentqEnv, workerRegistered } from './end-to-end.ts';
import { httpClient, type HttpClient } from './http-client.ts';
import { pollUntil, runConcurrently, secondsSince } from './measure.ts';
import { Monitor } from './monitor.ts';
import {
  startApiChild,
  startRawRunnerChild,
  startWorkerChild,
  type BenchChild,
} from './processes.ts';
import { createRawWorkerPool, RAW_REMAINING_SQL } from './raw.ts';

export interface ScaleStep {
  system: 'agentq' | 'raw';
  workers: number;
  /** API processes (0 for raw). */
  apis: number;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  /** xact_commit delta over the timed window, per second (live reading, see above). */
  commitsPerSecond: number;
  /** Complete counters over the processes' lives, per task handled. */
  commitsPerTask: number;
  rowWritesPerTask: number;
  /** CPU ms per timed task: each worker process, each API process, Postgres, this process. */
  cpuMsPerTask: { workers: number[]; apis: number[]; postgres: number; submitters: number };
  /** Share of one core used during the window (CPU s / wall s). */
  coresBusy: { workers: number[]; apis: number[]; postgres: number; submitters: number };
  /** Most connections to the database seen during the window. */
  peakConnections: number;
  /** Submits sent again after a reset socket (agentq; the idempotency key makes them replays). */
  resent: number;
}

export interface ScaleResult {
  clients: number;
  warmup: number;
  steps: ScaleStep[];
}

const ADD_JOB = `SELECT graphile_worker.add_job('noop', json_build_object('i', $1::int))`;

/** POST /v1/tasks with the bench prompt and an idempotency key; 201 or 200 (a replay). */
async function submitWithKey(client: HttpClient, i: number, key: string): Promise<void> {
  const res = await client.request('POST', '/v1/tasks', {
    input: { prompt: benchPrompt(i) },
    idempotency_key: key,
  });
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`POST /v1/tasks: ${res.status} ${JSON.stringify(res.body)}`);
}

interface Window {
  wallStart: number;
  cpu: number[];
  postgres: number;
  self: NodeJS.CpuUsage;
  commits: number;
}

async function commits(monitor: Monitor): Promise<number> {
  return monitor.count(
    `SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
}

async function openWindow(
  monitor: Monitor,
  pids: number[],
  postmaster: number | undefined,
): Promise<Window> {
  return {
    wallStart: performance.now(),
    cpu: await Promise.all(pids.map(processCpuMs)),
    postgres: postmaster === undefined ? Number.NaN : await postgresCpuMs(postmaster),
    self: process.cpuUsage(),
    commits: await commits(monitor),
  };
}

/** Runs the timed part of one configuration: submit `tasks`, poll until drained, read the counters. */
async function timed(
  ctx: PhaseContext,
  monitor: Monitor,
  pids: number[],
  postmaster: number | undefined,
  remainingSql: string,
  submit: (i: number) => Promise<void>,
  clients: number,
  tasks: number,
) {
  let peakConnections = 0;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      peakConnections = Math.max(
        peakConnections,
        await monitor.count(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()`,
        ),
      );
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const start = await openWindow(monitor, pids, postmaster);
  await runConcurrently(tasks, clients, submit);
  await pollUntil(async () => (await monitor.count(remainingSql)) === 0, {
    intervalMs: ctx.donePollMs,
    timeoutMs: ctx.phaseTimeoutMs,
    what: 'the scale step to drain',
  });
  const seconds = secondsSince(start.wallStart);
  const self = process.cpuUsage(start.self);
  const cpu = await Promise.all(pids.map(processCpuMs));
  const pgEnd = postmaster === undefined ? Number.NaN : await postgresCpuMs(postmaster);
  const commitsEnd = await commits(monitor);
  watching = false;
  await watcher;
  const cpuMs = cpu.map((c, i) => c - start.cpu[i]!);
  return {
    seconds,
    cpuMs,
    postgresMs: pgEnd - start.postgres,
    selfMs: (self.user + self.system) / 1000,
    commits: commitsEnd - start.commits,
    peakConnections,
  };
}

async function stopAll(children: BenchChild[]) {
  await Promise.all(children.map((c) => c.stop()));
}

async function step(
  ctx: PhaseContext,
  system: 'agentq' | 'raw',
  workers: number,
  apis: number,
  clients: number,
  warmup: number,
): Promise<ScaleStep> {
  const name = `agentq_bench_scale_${system}_${workers}w${apis}a_${process.pid}`;
  const url = await ctx.pg.createMigratedDatabase(name);
  const monitor = await Monitor.connect(url);
  const closeMonitor = ctx.onCleanup(`scale ${name} monitor`, () => monitor.close());
  const [backend] = await monitor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  // The postmaster, when Postgres runs on this machine (its CPU is then readable in /proc).
  const postmaster = backend ? await parentPid(backend.pid) : undefined;
  const before = await monitor.writeCounters();
  const apiChildren: Array<BenchChild & { url: string }> = [];
  const workerChildren: BenchChild[] = [];
  const stopChildren = ctx.onCleanup(`scale ${name} processes`, () =>
    stopAll([...workerChildren, ...apiChildren]),
  );
  const https: HttpClient[] = [];
  let rawPool: pg.Pool | undefined;
  let result: Awaited<ReturnType<typeof timed>>;
  let resent = 0;
  try {
    let submit: (i: number) => Promise<void>;
    let remaining: string;
    if (system === 'agentq') {
      const env = agentqEnv(url, ctx.concurrency, ctx.poolMax);
      apiChildren.push(
        ...(await Promise.all(Array.from({ length: apis }, () => startApiChild(env)))),
      );
      workerChildren.push(
        ...(await Promise.all(
          Array.from({ length: workers }, () => startWorkerChild(env, workerRegistered(monitor))),
        )),
      );
      // Each API gets its share of the submitters' sockets.
      https.push(...apiChildren.map((a) => httpClient(a.url, Math.ceil(clients / apis))));
      submit = async (i) => {
        // A reset socket (an API closing a keep-alive connection as it is reused) is sent
        // again, as a client would; the idempotency key makes that safe.
        for (let attempt = 1; ; attempt++) {
          try {
            await submitWithKey(https[i % https.length]!, i, `${name}-${i}`);
            return;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (attempt >= 5 || (code !== 'ECONNRESET' && code !== 'EPIPE')) throw err;
            resent++;
          }
        }
      };
      remaining = AGENTQ_REMAINING_SQL;
    } else {
      workerChildren.push(
        ...(await Promise.all(
          Array.from({ length: workers }, () =>
            startRawRunnerChild({
              DATABASE_URL: url,
              BENCH_RAW_CONCURRENCY: String(ctx.concurrency),
              BENCH_RAW_POOL_MAX: String(ctx.poolMax),
            }),
          ),
        )),
      );
      // One connection per submitter, like one socket per HTTP client.
      const pool = createRawWorkerPool(url, clients);
      rawPool = pool;
      submit = async (i) => void (await pool.query(ADD_JOB, [i]));
      remaining = RAW_REMAINING_SQL;
    }
    // Untimed: JIT, connections and prepared statements warm up on the same path.
    await runConcurrently(warmup, clients, submit);
    await pollUntil(async () => (await monitor.count(remaining)) === 0, {
      intervalMs: ctx.donePollMs,
      timeoutMs: ctx.phaseTimeoutMs,
      what: 'the scale warm-up to drain',
    });
    // Fresh sockets for the timed part: the API closes a keep-alive socket idle for 5 s (the
    // drain above can take that long), and a request sent on it as it closes is reset.
    if (system === 'agentq') {
      for (const h of https.splice(0)) h.close();
      https.push(...apiChildren.map((a) => httpClient(a.url, Math.ceil(clients / apis))));
    }
    const pids = [...workerChildren, ...apiChildren].map((c) => c.pid);
    result = await timed(
      ctx,
      monitor,
      pids,
      postmaster,
      remaining,
      (i) => submit(warmup + i),
      clients,
      ctx.tasks,
    );
  } finally {
    for (const h of https) h.close();
    await rawPool?.end();
  }
  await stopChildren();
  const after = await monitor.writeCounters();
  await closeMonitor();
  const perTask = Monitor.perTask(before, after, warmup + ctx.tasks);
  const tasks = ctx.tasks;
  const busy = (ms: number) => ms / 1000 / result.seconds;
  const workerMs = result.cpuMs.slice(0, workers);
  const apiMs = result.cpuMs.slice(workers);
  return {
    system,
    workers,
    apis,
    tasks,
    seconds: result.seconds,
    tasksPerSecond: tasks / result.seconds,
    commitsPerSecond: result.commits / result.seconds,
    commitsPerTask: perTask.commits,
    rowWritesPerTask: perTask.rowWrites,
    cpuMsPerTask: {
      workers: workerMs.map((ms) => ms / tasks),
      apis: apiMs.map((ms) => ms / tasks),
      postgres: result.postgresMs / tasks,
      submitters: result.selfMs / tasks,
    },
    coresBusy: {
      workers: workerMs.map(busy),
      apis: apiMs.map(busy),
      postgres: busy(result.postgresMs),
      submitters: busy(result.selfMs),
    },
    peakConnections: result.peakConnections,
    resent,
  };
}

export async function scale(
  ctx: PhaseContext,
  clients: number,
  workerCounts: number[],
  apiCounts: number[],
): Promise<ScaleResult> {
  if ([...workerCounts, ...apiCounts].some((n) => n < 1))
    throw new Error('BENCH_SCALE_WORKERS and BENCH_SCALE_APIS take counts from 1 up');
  const warmup = Math.min(200, ctx.tasks);
  const steps: ScaleStep[] = [];
  for (const workers of workerCounts) {
    ctx.log(`scale: raw graphile-worker, ${workers} runner process(es)`);
    steps.push(await step(ctx, 'raw', workers, 0, clients, warmup));
    for (const apis of apiCounts) {
      ctx.log(`scale: agentq, ${workers} worker process(es), ${apis} API process(es)`);
      steps.push(await step(ctx, 'agentq', workers, apis, clients, warmup));
    }
  }
  return { clients, warmup, steps };
}
