/**
 * A real-looking load: one worker process (worker/main.ts) at concurrency 50
 * with the OpenAI provider against a fake OpenAI-compatible server in this
 * process (tests/helpers/fake-openai.ts), which answers every task's first
 * request with one calculator call and its second with the final text, each
 * after `modelMs`. A task then spends 2 × modelMs waiting on the model, so the
 * concurrency allows at most concurrency / (2 × modelMs) tasks per second:
 * the ceiling the figure is held against.
 *
 * The queue is filled in one transaction once the worker is up (fill.ts) and
 * the clock runs from that commit until every task has finished. The worker's
 * RSS is read from /proc while it runs (VmRSS samples and the kernel's VmHWM).
 */
import { startFakeOpenAI } from '../tests/helpers/fake-openai.ts';
import { resolveAgentConfig } from '../shared/tasks/agent-config.ts';
import { AGENTQ_REMAINING_SQL } from './agentq.ts';
import type { PhaseContext } from './context.ts';
import { agentqEnv, workerRegistered } from './end-to-end.ts';
import { fillQueue } from './fill.ts';
import { pollUntil, secondsSince } from './measure.ts';
import { Monitor } from './monitor.ts';
import { sampleProcessMemory, startWorkerChild, type ProcessMemory } from './processes.ts';
import { createPool } from '../shared/db/database.ts';

export interface RealisticResult {
  concurrency: number;
  modelMs: number;
  tasks: number;
  seconds: number;
  tasksPerSecond: number;
  /** concurrency / (2 × modelMs). */
  ceilingPerSecond: number;
  workerMemory: ProcessMemory;
  modelRequests: number;
  /** Where the time goes, from the rows (ms, p50 / p99): what bounds the figure. */
  breakdownMs: {
    /** The model's answer time as the worker saw it (llm_call events' latency_ms); the fake waits modelMs. */
    modelCall: [number, number];
    /** started_at → finished_at: the whole attempt, 2 model calls included. */
    run: [number, number];
  };
}

const ANSWER = 'The answer is 391.';

export async function realistic(
  ctx: PhaseContext,
  concurrency: number,
  modelMs: number,
): Promise<RealisticResult> {
  const fake = await startFakeOpenAI();
  ctx.onCleanup('fake OpenAI server', () => fake.close());
  fake.setHandler((request) => ({
    delayMs: modelMs,
    then:
      request.toolRounds === 0
        ? { toolCalls: [{ name: 'calculator', arguments: { expression: '17 * 23' } }] }
        : { text: ANSWER },
  }));

  const url = await ctx.pg.createMigratedDatabase(`agentq_bench_real_${process.pid}`);
  const monitor = await Monitor.connect(url);
  ctx.onCleanup('realistic monitor', () => monitor.close());
  const pool = createPool({ connectionString: url, applicationName: 'agentq-bench-fill', max: 2 });
  ctx.onCleanup('realistic fill pool', () => pool.end());
  const poolMax = Math.max(10, concurrency + 5);
  const worker = await startWorkerChild(
    {
      ...agentqEnv(url, concurrency, poolMax),
      AGENTQ_DEFAULT_PROVIDER: 'openai',
      OPENAI_API_KEY: 'sk-bench-fake-key',
      OPENAI_BASE_URL: fake.url,
    },
    workerRegistered(monitor),
  );
  const stopWorker = ctx.onCleanup('realistic worker', async () => {
    await worker.stop();
  });
  const memory = sampleProcessMemory(worker.pid);
  const config = resolveAgentConfig({}, { provider: 'openai', model: undefined });
  const drain = (what: string) =>
    pollUntil(async () => (await monitor.count(AGENTQ_REMAINING_SQL)) === 0, {
      intervalMs: ctx.donePollMs,
      timeoutMs: ctx.phaseTimeoutMs,
      what,
    });

  await fillQueue(pool, Math.min(concurrency * 4, ctx.tasks), config); // untimed warm-up
  await drain('the realistic warm-up to drain');
  const ids = await fillQueue(pool, ctx.tasks, config);
  const start = performance.now();
  await drain('the realistic tasks to finish');
  const seconds = secondsSince(start);
  const workerMemory = await memory.stop();
  await stopWorker();

  const [check] = await monitor.query<{ completed: number; answered: number }>(
    `SELECT count(*) FILTER (WHERE status = 'completed') AS completed,
            count(*) FILTER (WHERE result->>'answer' = $2) AS answered
     FROM agentq.tasks WHERE id = ANY($1::uuid[])`,
    [ids, ANSWER],
  );
  if (check?.completed !== ctx.tasks || check.answered !== ctx.tasks) {
    throw new Error(
      `realistic: ${check?.completed}/${ctx.tasks} completed, ${check?.answered} answered`,
    );
  }
  const [times] = await monitor.query<{ model: number[]; run: number[] }>(
    `SELECT (SELECT percentile_cont(array[0.5, 0.99]) WITHIN GROUP (ORDER BY (data->>'latency_ms')::float8)
             FROM agentq.task_events WHERE task_id = ANY($1::uuid[]) AND type = 'llm_call') AS model,
            (SELECT percentile_cont(array[0.5, 0.99]) WITHIN GROUP
               (ORDER BY extract(epoch FROM finished_at - started_at)::float8 * 1000)
             FROM agentq.tasks WHERE id = ANY($1::uuid[])) AS run`,
    [ids],
  );
  const pair = (v: number[] | null | undefined): [number, number] => [
    v?.[0] ?? Number.NaN,
    v?.[1] ?? Number.NaN,
  ];
  return {
    concurrency,
    modelMs,
    tasks: ctx.tasks,
    seconds,
    tasksPerSecond: ctx.tasks / seconds,
    ceilingPerSecond: concurrency / ((2 * modelMs) / 1000),
    workerMemory,
    modelRequests: fake.requests.length,
    breakdownMs: { modelCall: pair(times?.model), run: pair(times?.run) },
  };
}
