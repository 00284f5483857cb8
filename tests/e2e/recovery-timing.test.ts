// Crash recovery with the DEFAULT timings (no AGENTQ_HEARTBEAT_MS or
// AGENTQ_WORKER_DEAD_AFTER_MS set): a SIGKILLed worker's task is recovered by
// another worker well within 15 s of the kill (a bound the product promises,
// hence a timed assertion), while a worker whose event loop is kept busy by
// CPU-bound tool work at concurrency 50 is never presumed dead. (That test
// keeps one core busy for about half a minute, by design.)
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createPool } from '../../shared/db/database.ts';
import { createLogger } from '../../shared/logger.ts';
import { resolveAgentConfig } from '../../shared/tasks/agent-config.ts';
import {
  taskCancelQueued,
  taskFindById,
  taskInsertWithJob,
  taskRequestCancel,
} from '../../shared/tasks/task-queries.ts';
import type { ToolRunner } from '../../worker/agent/run-agent.ts';
import { toolDefinition, TOOLS } from '../../worker/tools/registry.ts';
import { startWorker } from '../../worker/worker.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { newTask } from '../helpers/fixtures.ts';
import { startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { testConfig } from '../helpers/test-config.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
let fake: FakeLlmServer;
let env: Record<string, string>;
const processes: AgentqProcess[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: fake.url,
  };
});

afterEach(async () => {
  for (const p of processes.splice(0)) await p.stop('SIGKILL');
});

afterAll(async () => {
  await fake?.close();
  await tdb?.drop();
});

async function workerProcess() {
  const w = await startWorkerProcess(env);
  processes.push(w);
  return w;
}

async function recoveredEvents(taskIds: string[]) {
  const { rows } = await sql<{ task_id: string; data: Record<string, unknown> }>`
    SELECT task_id, data FROM agentq.task_events
    WHERE type = 'recovered' AND task_id = ANY(${taskIds}::uuid[])`.execute(tdb.db);
  return rows;
}

describe('crash recovery with default timings', () => {
  it('recovers a SIGKILLed worker’s task in under 15 s', async () => {
    const victim = await workerProcess();
    const task = (await taskInsertWithJob(
      tdb.db,
      newTask({
        input: { prompt: '[hang] Think forever. (kill-timing)' },
        config: resolveAgentConfig({}, { provider: 'openai', model: undefined }),
      }),
    ))!;
    await waitFor(async () => (await taskFindById(tdb.db, task.id))?.worker_id === victim.id, {
      what: 'the task to run on the victim',
    });
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(kill-timing)')));
    // The survivor is up before the kill: what is measured is detection, not a start-up.
    await workerProcess();

    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    const [event] = await waitFor(
      async () => {
        const events = await recoveredEvents([task.id]);
        return events.length > 0 ? events : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the recovered event' },
    );
    const elapsed = Date.now() - killedAt;
    expect(event!.data).toMatchObject({ previous_worker: victim.id, outcome: 'queued' });
    expect(elapsed, `kill → recovered took ${elapsed} ms`).toBeLessThan(15_000);

    // Leave nothing running for the next test: cancel the re-run task, queued or running.
    await waitFor(
      async () => {
        await taskCancelQueued(tdb.db, task.id);
        await taskRequestCancel(tdb.db, task.id);
        return (await taskFindById(tdb.db, task.id))?.status === 'cancelled';
      },
      { intervalMs: 500, what: 'the re-run task to be cancelled' },
    );
  }, 120_000);

  it('never presumes a worker dead while CPU-bound tools keep its event loop busy at concurrency 50', async () => {
    const TASKS = 50;
    const SLICE_MS = 30; // each tool call computes in slices this long, yielding between them
    let burning = true;
    let toolCalls = 0;
    // The calculator's definition, with a run that is CPU-bound until told to stop.
    const cpuBoundTools: ToolRunner = {
      definitions: (names) =>
        names.map((n) => toolDefinition(TOOLS[n as keyof typeof TOOLS] ?? TOOLS.calculator)),
      async run(_name, _args, signal) {
        toolCalls++;
        while (burning && !signal.aborted) {
          const until = performance.now() + SLICE_MS;
          while (performance.now() < until) {
            // spin: the work of a CPU-bound tool
          }
          await nextTurn();
        }
        return { ok: true, output: { result: 4 } };
      },
    };
    const config = testConfig({
      DATABASE_URL: tdb.url,
      AGENTQ_WORKER_CONCURRENCY: String(TASKS),
    });
    expect([config.heartbeatMs, config.workerDeadAfterMs]).toEqual([2000, 10_000]); // the defaults
    const pool = createPool({ connectionString: tdb.url, applicationName: 'agentq-busy-worker' });
    const tasks = await Promise.all(
      Array.from({ length: TASKS }, () => taskInsertWithJob(tdb.db, newTask())),
    );
    const busy = await startWorker({
      config,
      pool,
      connectionString: tdb.url,
      logger: createLogger('busy-worker', 'silent'),
      tools: cpuBoundTools,
    });
    try {
      await waitFor(() => toolCalls === TASKS, {
        timeoutMs: 60_000,
        what: 'every task to be in its CPU-bound tool',
      });
      // Only now a second worker, which would recover the busy one's tasks if
      // it went silent; it finds no queued work of its own to take.
      const observer = await workerProcess();
      const watchFrom = Date.now();
      // Watch through two dead-worker thresholds of the observer's
      // own heartbeats (a condition on the database, not a sleep).
      await waitFor(
        async () => {
          const { rows } = await sql<{ ok: boolean }>`
            SELECT last_seen_at > to_timestamp(${(watchFrom + 2 * config.workerDeadAfterMs) / 1000})
              AS ok FROM agentq.workers WHERE id = ${observer.id}`.execute(tdb.db);
          return rows[0]?.ok === true;
        },
        { timeoutMs: 90_000, intervalMs: 500, what: 'the observer to watch for 20 s' },
      );
      const ids = tasks.map((t) => t!.id);
      expect(await recoveredEvents(ids)).toEqual([]);
      const presumedDead = observer
        .logs()
        .filter((l) => JSON.stringify(l.deadWorkers ?? []).includes(busy.id));
      expect(presumedDead).toEqual([]);
      burning = false;
      const rows = await waitFor(
        async () => {
          const all = await Promise.all(tasks.map((t) => taskFindById(tdb.db, t!.id)));
          return all.every((r) => r?.status === 'completed') ? all : undefined;
        },
        { timeoutMs: 60_000, what: 'every busy task to complete' },
      );
      expect(rows.map((r) => [r!.attempts, r!.claim, r!.worker_id])).toEqual(
        rows.map(() => [1, 1, busy.id]),
      );
      expect(await recoveredEvents(ids)).toEqual([]);
    } finally {
      burning = false;
      await busy.stop();
      await pool.end();
    }
  }, 240_000);
});
