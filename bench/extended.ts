/**
 * The phases issue 8 added to `npm run bench`, after the original three:
 * end to end with concurrent submitters (end-to-end.ts), GET /v1/tasks/:id
 * under load (read-load.ts), a real-looking load at concurrency 50
 * (realistic.ts), the drain with history in the tables (history.ts), and CPU
 * profiles of the end-to-end processes (BENCH_CPU_PROF=1, profiles.ts).
 * Returns table rows in run.ts's format: for rows with no raw counterpart the
 * raw column is empty (n/a), or holds the figure the row is held against, as
 * its label says.
 */
import { mkdir, rm } from 'node:fs/promises';
import type { ExtendedParams, PhaseContext, PhaseOutput } from './context.ts';
import { endToEnd } from './end-to-end.ts';
import { history } from './history.ts';
import { PROFILE_DIR, profilePath } from './processes.ts';
import { renderSelfTime, topSelfTime } from './profiles.ts';
import { readLoad } from './read-load.ts';
import { realistic } from './realistic.ts';
import { scale, type ScaleStep } from './scale.ts';
import { row, type Row } from './report.ts';

const mb = (bytes: number) => bytes / (1024 * 1024);
const thousands = (n: number) =>
  n >= 1_000_000 && n % 1_000_000 === 0
    ? `${n / 1_000_000}M`
    : n >= 1000 && n % 1000 === 0
      ? `${n / 1000}k`
      : n.toLocaleString('en-US');

export async function runExtendedPhases(
  ctx: PhaseContext,
  params: ExtendedParams,
): Promise<PhaseOutput> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const details: Record<string, unknown> = { parameters: params };
  const on = (phase: string) => params.PHASES.includes(phase);

  // Needs the end-to-end phase's database (its finished tasks) for the reads.
  if (on('e2e') || on('read')) {
    if (params.CPU_PROF) {
      await rm(PROFILE_DIR, { recursive: true, force: true });
      await mkdir(PROFILE_DIR, { recursive: true });
    }
    ctx.log('phase e2e: end to end with concurrent submitters');
    const e2e = await endToEnd(ctx, params.E2E_CLIENTS, params.CPU_PROF);
    details.end_to_end = e2e;
    const E2E = `end to end, ${e2e.clients} clients submitting one at a time, one worker draining`;
    rows.push(
      row(
        E2E,
        'add_job + no-op runner  |  POST + offline agent worker',
        'tasks/s',
        'higher',
        e2e.raw.tasksPerSecond,
        e2e.agentq.tasksPerSecond,
      ),
      row(
        E2E,
        'p50  add_job→handler ran  |  submit→completed',
        'ms',
        'lower',
        e2e.raw.latencyMs.p50,
        e2e.agentq.latencyMs.p50,
      ),
      row(
        E2E,
        'p99  add_job→handler ran  |  submit→completed',
        'ms',
        'lower',
        e2e.raw.latencyMs.p99,
        e2e.agentq.latencyMs.p99,
      ),
      row(
        E2E,
        'commits per task',
        'per task',
        'lower',
        e2e.raw.writes.commits,
        e2e.agentq.writes.commits,
      ),
      row(
        E2E,
        'rows written per task',
        'per task',
        'lower',
        e2e.raw.writes.rowWrites,
        e2e.agentq.writes.rowWrites,
      ),
      row(
        E2E,
        'worker process peak RSS (VmRSS samples)',
        'MB',
        'lower',
        mb(e2e.raw.workerMemory.peakRssBytes),
        mb(e2e.agentq.workerMemory.peakRssBytes),
      ),
    );
    notes.push(
      `End to end: each side's worker is its own process (agentq: api/main.ts and worker/main.ts; raw: ` +
        `bench/raw-runner-main.ts), the submitters run in the bench process. Timed from the first submit until ` +
        `nothing is left (agentq: every task terminal and its job deleted; raw: the jobs table empty), after an ` +
        `untimed warm-up of ${e2e.warmup} tasks through the same processes. agentq's submit→completed is ` +
        `finished_at − created_at from the rows (the database's clock); raw's latency stops when the handler ` +
        `starts. Commits and rows per task: pg_stat_database over the processes' whole lives (start-up, ` +
        `warm-up, timed run; listeners included) divided by the ${e2e.agentq.handled} tasks they handled.`,
    );

    for (const { name, windowUs } of e2e.profiled) {
      const file = await profilePath(name);
      const top = await topSelfTime(file, 15, windowUs);
      const text = renderSelfTime(
        `CPU profile, ${name} process in the end-to-end phase (${file}): top 15 self time`,
        top,
      );
      process.stdout.write(`\n${text}\n`);
      details.cpu_profiles ??= {} as Record<string, unknown>;
      (details.cpu_profiles as Record<string, unknown>)[name] = top;
    }

    if (on('read')) {
      ctx.log(
        `phase read: GET /v1/tasks/:id, ${params.READ_CLIENTS} clients, ${params.READ_SECONDS} s`,
      );
      const read = await readLoad(ctx, e2e.agentqUrl, params.READ_CLIENTS, params.READ_SECONDS);
      details.read_load = read;
      const READ = `reads, ${read.clients} clients, no raw counterpart`;
      rows.push(
        row(READ, 'GET /v1/tasks/:id', 'requests/s', 'higher', Number.NaN, read.requestsPerSecond),
        row(READ, 'GET /v1/tasks/:id p50', 'ms', 'lower', Number.NaN, read.latencyMs.p50),
        row(READ, 'GET /v1/tasks/:id p99', 'ms', 'lower', Number.NaN, read.latencyMs.p99),
        row(
          READ,
          'commit → long-poll wake p50',
          'ms',
          'lower',
          Number.NaN,
          read.wake.latencyMs.p50,
        ),
        row(
          READ,
          'commit → long-poll wake p99',
          'ms',
          'lower',
          Number.NaN,
          read.wake.latencyMs.p99,
        ),
      );
      notes.push(
        `Reads: ${read.requests} GETs in ${read.seconds.toFixed(1)} s over keep-alive HTTP from the bench ` +
          `process to an API process, each for a random one of ${read.tasks} finished tasks, after 1 s untimed. ` +
          `Then ${read.wake.samples} sequential samples of commit → long-poll wake (bench/wake-latency.ts): a ` +
          `waiting GET ?wait=10 and an autocommit UPDATE that finishes its task, timed from the UPDATE's ` +
          `return to the GET's answer.`,
      );
    }
  }

  if (on('realistic')) {
    ctx.log(
      `phase realistic: concurrency ${params.REALISTIC_CONCURRENCY}, model answers in ${params.MODEL_MS} ms`,
    );
    const real = await realistic(ctx, params.REALISTIC_CONCURRENCY, params.MODEL_MS);
    details.realistic = real;
    const REAL = `realistic load, concurrency ${real.concurrency}, model ${real.modelMs} ms, 1 tool call`;
    rows.push(
      row(
        REAL,
        `ceiling ${real.concurrency}/(2×${real.modelMs} ms)  |  agentq (ratio: share of it)`,
        'tasks/s',
        'higher',
        real.ceilingPerSecond,
        real.tasksPerSecond,
      ),
      row(
        REAL,
        'worker peak RSS (VmRSS samples)',
        'MB',
        'lower',
        Number.NaN,
        mb(real.workerMemory.peakRssBytes),
      ),
      row(
        REAL,
        'worker VmHWM (kernel peak, start-up included)',
        'MB',
        'lower',
        Number.NaN,
        mb(real.workerMemory.hwmBytes),
      ),
    );
    notes.push(
      `Realistic: the OpenAI provider against a fake OpenAI-compatible server in the bench process ` +
        `(tests/helpers/fake-openai.ts) answering a calculator call, then the final text, each after ` +
        `${real.modelMs} ms; the worker is its own process; the queue is filled in one transaction once the ` +
        `worker is up, and the clock starts at that commit. Where the time goes (p50 / p99): a model call as ` +
        `the worker saw it ${real.breakdownMs.modelCall.map((v) => v.toFixed(1)).join(' / ')} ms (the fake ` +
        `waits ${real.modelMs} ms), a whole attempt ${real.breakdownMs.run.map((v) => v.toFixed(1)).join(' / ')} ms ` +
        `(started_at → finished_at; the model alone is ${2 * real.modelMs} ms).`,
    );
  }

  if (on('history')) {
    ctx.log(
      `phase history: drains with ${params.HISTORY.map(thousands).join(', ')} finished tasks present`,
    );
    const hist = await history(ctx, params.HISTORY);
    details.history = hist;
    if ('skipped' in hist) {
      notes.push(`History: skipped, ${hist.skipped}.`);
    } else {
      const HIST = `drain with finished tasks in the tables, ${ctx.tasks} tasks`;
      const empty = hist.steps.find((s) => s.history === 0);
      for (const step of hist.steps) {
        if (step === empty) continue;
        rows.push(
          row(
            HIST,
            `agentq, empty tables  |  with ${thousands(step.history)} tasks, ${thousands(step.events)} events`,
            'tasks/s',
            'higher',
            empty?.tasksPerSecond ?? Number.NaN,
            step.tasksPerSecond,
          ),
        );
      }
      if (empty && hist.steps.length === 1) {
        rows.push(
          row(HIST, 'agentq, empty tables', 'tasks/s', 'higher', Number.NaN, empty.tasksPerSecond),
        );
      }
      if (hist.retention) {
        const r = hist.retention;
        rows.push(
          row(
            `retention run (AGENTQ_RETENTION_DAYS=30) with ${thousands(r.tasksBefore)} tasks, the history 40 days old`,
            'agentq',
            'ms',
            'lower',
            Number.NaN,
            r.ms,
          ),
        );
        notes.push(
          `Retention: dropped ${r.dropped.join(', ') || 'nothing'}, deleted ${r.deletedTasks} tasks in batches; ` +
            `${thousands(r.tasksBefore)} tasks before, ${thousands(r.tasksAfter)} after. ` +
            `SELECT * FROM agentq.queue_stats with the history present: ${hist.queueStatsMs?.toFixed(0)} ms.`,
        );
      }
      notes.push(
        `History: the worker runs in the bench process; the queue is filled in one transaction and the clock ` +
          `starts at its commit. History bulk-loaded with triggers off (session_replication_role = replica), ` +
          `then VACUUM ANALYZE. Table sizes at the end: ` +
          Object.entries(hist.tableMb)
            .map(([name, size]) => `${name} ${size.toFixed(0)} MB`)
            .join(', ') +
          (hist.explainPath
            ? `. EXPLAIN (ANALYZE, BUFFERS) of the hot statements: ${hist.explainPath}.`
            : '.'),
      );
    }
  }
  if (on('scale')) {
    ctx.log(
      `phase scale: ${params.SCALE_WORKERS.join('/')} worker processes × ${params.SCALE_APIS.join('/')} API processes, ${params.E2E_CLIENTS} submitters`,
    );
    const result = await scale(ctx, params.E2E_CLIENTS, params.SCALE_WORKERS, params.SCALE_APIS);
    details.scale = result;
    rows.push(...scaleRows(result.steps, result.clients, ctx.concurrency));
    notes.push(
      `Scale: each configuration on a fresh database, processes of its own (api/main.ts, worker/main.ts at ` +
        `concurrency ${ctx.concurrency} and AGENTQ_DB_POOL_MAX ${ctx.poolMax} each; raw: raw-runner-main.ts), ` +
        `${result.clients} submitters in the bench process (agentq: POST /v1/tasks round-robin over the APIs; ` +
        `raw: add_job), an untimed warm-up of ${result.warmup} tasks, then ${ctx.tasks} timed tasks until nothing is ` +
        `left. CPU from /proc over the timed window (Postgres: the postmaster and all its processes, so on a shared ` +
        `server it counts everyone's); commits/s from live pg_stat_database readings; commits per task over the ` +
        `processes' whole lives.`,
      ...result.steps.map(describeStep),
    );
  }
  return { rows, notes, details };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const list = (values: number[], digits: number) => values.map((v) => v.toFixed(digits)).join('+');

function describeStep(s: ScaleStep): string {
  const who = s.system === 'raw' ? `raw ${s.workers}w` : `agentq ${s.workers}w/${s.apis}a`;
  const ms = s.cpuMsPerTask;
  const busy = s.coresBusy;
  return (
    `Scale ${who}: ${s.tasksPerSecond.toFixed(0)} tasks/s; ${s.commitsPerSecond.toFixed(0)} commits/s ` +
    `(${s.commitsPerTask.toFixed(1)} per task); CPU ms per task: workers ${list(ms.workers, 2)}` +
    (s.apis > 0 ? `, APIs ${list(ms.apis, 2)}` : '') +
    `, Postgres ${ms.postgres.toFixed(2)}, submitters ${ms.submitters.toFixed(2)}; cores busy: workers ` +
    `${list(busy.workers, 2)}` +
    (s.apis > 0 ? `, APIs ${list(busy.apis, 2)}` : '') +
    `, Postgres ${busy.postgres.toFixed(2)}, submitters ${busy.submitters.toFixed(2)} ` +
    `(total ${(sum(busy.workers) + sum(busy.apis) + busy.postgres + busy.submitters).toFixed(2)}); ` +
    `peak connections ${s.peakConnections}` +
    (s.resent > 0 ? `; ${s.resent} submits sent again after a reset socket.` : '.')
  );
}

function scaleRows(steps: ScaleStep[], clients: number, concurrency: number): Row[] {
  const SCALE = `scale-out, ${clients} submitters, concurrency ${concurrency} per worker process, offline`;
  const rows: Row[] = [];
  const raws = steps.filter((s) => s.system === 'raw');
  for (const raw of raws) {
    const plural = raw.workers === 1 ? 'process' : 'processes';
    for (const aq of steps.filter((s) => s.system === 'agentq' && s.workers === raw.workers)) {
      const apis = `${aq.apis} API${aq.apis === 1 ? '' : 's'}`;
      rows.push(
        row(
          SCALE,
          `${raw.workers} worker ${plural}: raw no-op  |  agentq, ${apis}`,
          'tasks/s',
          'higher',
          raw.tasksPerSecond,
          aq.tasksPerSecond,
        ),
        row(
          SCALE,
          `  commits/s  (raw  |  agentq, ${apis})`,
          'commits/s',
          'info',
          raw.commitsPerSecond,
          aq.commitsPerSecond,
        ),
        row(
          SCALE,
          `  Postgres CPU per task  (raw  |  agentq, ${apis})`,
          'ms',
          'info',
          raw.cpuMsPerTask.postgres,
          aq.cpuMsPerTask.postgres,
        ),
      );
    }
  }
  return rows;
}
