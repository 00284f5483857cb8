// Faults through the real processes: a worker killed or frozen mid-task, a
// running task cancelled, a provider failing, a worker shut down mid-run, and
// every database connection cut under load. Nothing accepted may be lost, and
// nothing may finish twice.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { apiClient, type TaskJson } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { parsePromText } from '../helpers/prom-text.ts';

let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: AgentqProcess & { url: string };
let client: ReturnType<typeof apiClient>;
let env: Record<string, string>;
const workers: Array<AgentqProcess & { id: string }> = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: fake.url,
    AGENTQ_HEARTBEAT_MS: '300',
    AGENTQ_WORKER_DEAD_AFTER_MS: '2000',
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_RETRY_BASE_MS: '100',
    AGENTQ_SHUTDOWN_GRACE_MS: '1000',
  };
  api = await startApiProcess(env);
  client = apiClient(api.url);
});

afterEach(async () => {
  // Every test starts with no workers; resume any frozen one so it can exit.
  for (const w of workers.splice(0)) {
    w.proc.kill('SIGCONT');
    await w.stop('SIGKILL');
  }
});

afterAll(async () => {
  await api?.stop();
  await fake?.close();
  await tdb?.drop();
});

async function worker(): Promise<AgentqProcess & { id: string }> {
  const w = await startWorkerProcess(env);
  workers.push(w);
  return w;
}

async function statusEvents(taskId: string) {
  const { rows } = await sql<{ to: string; attempt: number; created_at: Date }>`
    SELECT data->>'to' AS to, (data->>'attempt')::int AS attempt, created_at
    FROM agentq.task_events WHERE task_id = ${taskId} AND type = 'status' ORDER BY seq`.execute(
    tdb.db,
  );
  return rows;
}

/** What a failing fault test needs to be understood: task counts and the processes' warnings. */
async function diagnose(): Promise<string> {
  const { rows } = await sql<{ status: string; n: number }>`
    SELECT status, count(*)::int AS n FROM agentq.tasks GROUP BY status`.execute(tdb.db);
  const warnings = (p: AgentqProcess) =>
    p
      .output()
      .split('\n')
      .filter((l) => /"level":[456]0|Error/.test(l))
      .slice(-20)
      .map((l) => l.slice(0, 600))
      .join('\n');
  return [
    `tasks: ${JSON.stringify(rows)}`,
    ...workers.map((w, i) => `worker ${i} (exit ${w.proc.exitCode}):\n${warnings(w)}`),
    `api (exit ${api.proc.exitCode}):\n${warnings(api)}`,
  ].join('\n');
}

async function eventTypes(taskId: string) {
  return (await client.events(taskId)).map((e) => e.type);
}

async function runningOn(taskId: string): Promise<string> {
  return waitFor(
    async () => {
      const row = await tdb.db
        .selectFrom('agentq.tasks')
        .select(['status', 'worker_id'])
        .where('id', '=', taskId)
        .executeTakeFirst();
      return row?.status === 'running' ? (row.worker_id ?? undefined) : undefined;
    },
    { what: `task ${taskId} to be running` },
  );
}

describe('crash recovery', () => {
  it('finishes a task elsewhere after its worker is SIGKILLed mid-task', async () => {
    const a = await worker();
    const { body } = await client.submit({
      input: { prompt: '[delay=4000] Say hello. (sigkill)' },
    });
    expect(await runningOn(body.id)).toBe(a.id);
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(sigkill)')));
    await a.stop('SIGKILL');
    await worker(); // a second worker notices the silence and recovers the task
    const done = await client.waitDone(body.id, 60);
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(2);
    const types = await eventTypes(body.id);
    expect(types).toContain('recovered');
    expect((await statusEvents(body.id)).filter((e) => e.to === 'completed')).toHaveLength(1);
  });

  it('refuses the late write of a worker that was frozen (SIGSTOP) and came back', async () => {
    const a = await worker();
    const { body } = await client.submit({ input: { prompt: '[delay=1500] Say hello. (zombie)' } });
    expect(await runningOn(body.id)).toBe(a.id);
    a.proc.kill('SIGSTOP');
    const b = await worker();
    const done = await client.waitDone(body.id, 60);
    expect(done.status).toBe('completed');
    expect(done.attempts).toBe(2);
    const before = await tdb.db
      .selectFrom('agentq.tasks')
      .selectAll()
      .where('id', '=', body.id)
      .executeTakeFirstOrThrow();
    expect(before.worker_id).toBe(b.id);

    a.proc.kill('SIGCONT');
    // The zombie wakes, gets its (late) model answer, and tries to record it.
    await waitFor(
      () =>
        a.logs().some((l) => l.msg === 'attempt fenced out: another attempt owns this task now'),
      {
        timeoutMs: 20_000,
        what: 'the resumed worker to be fenced out',
      },
    );
    const after = await tdb.db
      .selectFrom('agentq.tasks')
      .selectAll()
      .where('id', '=', body.id)
      .executeTakeFirstOrThrow();
    expect(after.status).toBe('completed');
    expect(after.attempts).toBe(2);
    expect(after.result).toEqual(before.result);
    expect(after.finished_at).toEqual(before.finished_at);
    expect(after.last_event_seq).toBe(before.last_event_seq); // not even an event slipped in
    expect((await statusEvents(body.id)).filter((e) => e.to === 'completed')).toHaveLength(1);
  });
});

describe('cancellation', () => {
  it('cancels a running task within 2 s and aborts the in-flight model request', async () => {
    await worker();
    const { body } = await client.submit({
      input: { prompt: '[hang] Think forever. (cancel-running)' },
    });
    await runningOn(body.id);
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(cancel-running)')));
    const started = Date.now();
    const res = await client.cancel(body.id);
    expect(res.status).toBe(202);
    const done = await client.waitDone(body.id, 10);
    expect(done.status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(2000);
    await fake.waitFor((reqs) =>
      reqs.some((r) => r.prompt.includes('(cancel-running)') && r.aborted),
    );
    expect((await client.cancel(body.id)).status).toBe(200); // cancelling twice is fine
    expect(await eventTypes(body.id)).toContain('cancel_requested');
  });
});

describe('retries', () => {
  it('completes on attempt 3 after two provider 500s, with two retry events', async () => {
    await worker();
    const { body } = await client.submit({
      input: { prompt: '[fail=500x2] What is 3 + 4? (retry-500)' },
      max_attempts: 3,
    });
    const done = await client.waitDone(body.id, 60);
    expect(done.status).toBe('completed');
    expect(done.result?.answer).toBe('The answer is 7.');
    expect(done.attempts).toBe(3);
    const events = await client.events(body.id);
    const retries = events.filter((e) => e.type === 'retry');
    expect(retries).toHaveLength(2);
    expect(retries.map((r) => (r.data.error as { code: string }).code)).toEqual([
      'provider_unavailable',
      'provider_unavailable',
    ]);
  });

  it('honours Retry-After on 429 and fails after max_attempts', async () => {
    await worker();
    const { body } = await client.submit({
      input: { prompt: '[fail=429] [retry-after=1] Hello. (retry-429)' },
      max_attempts: 3,
    });
    const done = await client.waitDone(body.id, 60);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(3);
    expect(done.error).toMatchObject({ code: 'provider_unavailable', retryable: false });
    const events = await client.events(body.id);
    const retries = events.filter((e) => e.type === 'retry');
    expect(retries).toHaveLength(2);
    for (const r of retries) expect(r.data.delay_ms as number).toBeGreaterThanOrEqual(1000);
    const starts = (await statusEvents(body.id))
      .filter((e) => e.to === 'running')
      .map((e) => e.created_at.getTime());
    expect(starts).toHaveLength(3);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(1000);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(1000);
    expect(fake.requestCount('(retry-429)')).toBe(3); // the SDK itself did not retry
  });
});

describe('graceful shutdown', () => {
  it('lets a short task finish during the grace period, then exits 0', async () => {
    const a = await worker();
    const { body } = await client.submit({ input: { prompt: '[delay=300] Say hi. (term-short)' } });
    await runningOn(body.id);
    expect(await a.stop('SIGTERM')).toBe(0);
    const task = await client.get(body.id);
    expect(task.status).toBe('completed');
    expect(task.attempts).toBe(1);
  });

  it('requeues a long task when the grace period ends; another worker finishes it', async () => {
    const a = await worker();
    const { body } = await client.submit({ input: { prompt: '[delay=5000] Say hi. (term-long)' } });
    await runningOn(body.id);
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(term-long)')));
    expect(await a.stop('SIGTERM')).toBe(0);
    const between = await client.get(body.id);
    expect(between.status).toBe('queued'); // requeued, not failed, not left running
    await worker();
    const done = await client.waitDone(body.id, 60);
    expect(done.status).toBe('completed');
    const retry = (await client.events(body.id)).find((e) => e.type === 'retry');
    expect(retry?.data).toMatchObject({ reason: 'worker shutdown' });
    const running = await tdb.db
      .selectFrom('agentq.tasks')
      .select('id')
      .where('status', '=', 'running')
      .execute();
    expect(running).toEqual([]);
  });
});

describe('database faults', () => {
  it('survives every agentq connection being terminated under a load of 200 tasks', async () => {
    await Promise.all([worker(), worker()]);
    const slow = await client.submit({
      input: { prompt: '[delay=2500] Say hi. (long-poll across the cut)' },
    });
    const longPoll = client.get(slow.body.id, 30);
    const submitted = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        client.submit({ input: { prompt: `[delay=20] What is ${i} + 1? (load ${i})` } }),
      ),
    );
    expect(submitted.every((s) => s.status === 201)).toBe(true);
    // Wait for the run to be under way, then cut every agentq connection: the
    // API's LISTEN connection and pool, the workers' pools and LISTEN connections.
    await waitFor(
      async () => {
        const { rows } = await sql<{
          n: number;
        }>`SELECT count(*)::int AS n FROM agentq.tasks WHERE status = 'completed'`.execute(tdb.db);
        return rows[0]!.n >= 20;
      },
      { what: 'some tasks to complete' },
    ).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await diagnose()}`);
    });
    const { rows: killed } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'agentq-%'
        AND application_name <> 'agentq-test'`.execute(tdb.db);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'agentq-%'
        AND application_name <> 'agentq-test'`.execute(tdb.db);
    expect(killed.length).toBeGreaterThan(3);

    const everything = (async () => {
      const polled: TaskJson = await longPoll;
      const finalSlow =
        polled.status === 'completed' ? polled : await client.waitDone(slow.body.id, 60);
      return {
        finalSlow,
        done: await Promise.all(submitted.map((s) => client.waitDone(s.body.id, 60))),
      };
    })();
    const { finalSlow, done } = await everything.catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await diagnose()}`);
    });
    expect(finalSlow.status).toBe('completed');
    const notCompleted = done.filter((t) => t.status !== 'completed');
    if (notCompleted.length > 0) {
      const about = (p: AgentqProcess) =>
        p
          .output()
          .split('\n')
          .filter((l) => notCompleted.some((t) => l.includes(t.id)))
          .join('\n');
      throw new Error(
        `not completed: ${JSON.stringify(notCompleted.map((t) => [t.id, t.status, t.error?.code]))}\n` +
          `${await diagnose()}\n${workers.map(about).join('\n')}`,
      );
    }
    for (const [i, t] of done.entries()) expect(t.result?.answer).toBe(`The answer is ${i + 1}.`);
    const { rows: twice } = await sql<{ task_id: string }>`
      SELECT task_id FROM agentq.task_events WHERE type = 'status' AND data->>'to' = 'completed'
      GROUP BY task_id HAVING count(*) > 1`.execute(tdb.db);
    expect(twice).toEqual([]);
  }, 150_000);
});

describe('timeouts', () => {
  it('aborts the in-flight request when an attempt runs past timeout_s, and records code timeout', async () => {
    await worker();
    const { body } = await client.submit({
      input: { prompt: '[hang] Think forever. (timeout)' },
      timeout_s: 1,
      max_attempts: 1,
    });
    const done = await client.waitDone(body.id, 30);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'timeout', retryable: false });
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(timeout)') && r.aborted));
  });
});

describe('API shutdown', () => {
  it('answers a waiting long-poll with the current state and exits 0 on SIGTERM', async () => {
    const own = await startApiProcess(env);
    const ownClient = apiClient(own.url);
    const { body } = await ownClient.submit({
      input: { prompt: 'queued while no worker runs (api shutdown)' },
    });
    const poll = ownClient.get(body.id, 60);
    // The long-poll is parked on the shared LISTEN connection (the API says so
    // in /metrics); stop the server under it.
    await waitFor(
      async () => {
        const text = await (await fetch(`${own.url}/metrics`)).text();
        return parsePromText(text).sum('agentq_api_open_streams') === 1;
      },
      { what: 'the long-poll to be parked' },
    );
    const started = Date.now();
    const exit = own.stop('SIGTERM');
    const answered = await poll;
    expect(answered.status).toBe('queued');
    expect(await exit).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect((await ownClient.get(body.id).catch((e: Error) => e)) instanceof Error).toBe(true); // no longer listening
    // The task it accepted is still there for the next API to serve.
    expect((await client.get(body.id)).status).toBe('queued');
  });
});
