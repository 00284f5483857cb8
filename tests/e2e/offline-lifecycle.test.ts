// End to end through the real `api` and `worker` processes with the offline
// demo provider: the seed system could never see a task finish; this must.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { apiClient } from '../helpers/http-client.ts';

let tdb: TestDatabase;
let api: AgentqProcess & { url: string };
let worker: AgentqProcess;
let client: ReturnType<typeof apiClient>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  const env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'offline',
    AGENTQ_POLL_INTERVAL_MS: '200',
  };
  [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
  client = apiClient(api.url);
});

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await tdb?.drop();
});

describe('a task through the real processes (offline provider)', () => {
  it('submit, long-poll to completed, and read the full step log', async () => {
    const { status, body } = await client.submit({
      input: { prompt: 'What is 17 * 23? Use the calculator.' },
    });
    expect(status).toBe(201);
    const done = await client.waitDone(body.id);
    expect(done.status).toBe('completed');
    expect(done.result?.answer).toContain('391');
    expect(done.attempts).toBe(1);
    expect(done.usage).toMatchObject({ llm_calls: 2, tool_calls: 1 });
    expect(done.usage.input_tokens).toBeGreaterThan(0);
    const events = await client.events(body.id);
    expect(events.map((e) => e.type)).toEqual([
      'status',
      'status',
      'llm_call',
      'tool_call',
      'tool_result',
      'llm_call',
      'message',
      'answer',
      'status',
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const toolCall = events.find((e) => e.type === 'tool_call')!;
    expect(toolCall.data).toMatchObject({
      name: 'calculator',
      arguments: { expression: '17 * 23' },
    });
    const toolResult = events.find((e) => e.type === 'tool_result')!;
    expect(toolResult.data).toMatchObject({ name: 'calculator', output: { result: 391 } });
    expect(events.at(-1)!.data).toMatchObject({ from: 'running', to: 'completed' });
    expect(events.find((e) => e.type === 'llm_call')!.data).toMatchObject({ provider: 'offline' });
  });

  it('runs 20 concurrent submissions, each to completed exactly once', async () => {
    const submitted = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.submit({ input: { prompt: `What is ${i} + ${i}?` } }),
      ),
    );
    expect(submitted.every((s) => s.status === 201)).toBe(true);
    const done = await Promise.all(submitted.map((s) => client.waitDone(s.body.id)));
    for (const [i, task] of done.entries()) {
      expect(task.status).toBe('completed');
      expect(task.result?.answer).toContain(String(i + i));
      expect(task.attempts).toBe(1);
    }
    const ids = submitted.map((s) => s.body.id);
    const { rows } = await sql<{ task_id: string; running: number; completed: number }>`
      SELECT task_id,
        count(*) FILTER (WHERE data->>'to' = 'running')::int AS running,
        count(*) FILTER (WHERE data->>'to' = 'completed')::int AS completed
      FROM agentq.task_events WHERE type = 'status' AND task_id = ANY(${ids}::uuid[])
      GROUP BY task_id`.execute(tdb.db);
    expect(rows).toHaveLength(20);
    expect(rows.every((r) => r.running === 1 && r.completed === 1)).toBe(true);
  });

  it('does not start a task before its run_at', async () => {
    const runAt = new Date(Date.now() + 2000);
    const { body } = await client.submit({
      input: { prompt: 'What is 1 + 1?' },
      run_at: runAt.toISOString(),
    });
    const done = await client.waitDone(body.id);
    expect(done.status).toBe('completed');
    expect(Date.parse(done.started_at!)).toBeGreaterThanOrEqual(runAt.getTime());
  });

  it('answers an unknown provider with a 400 naming the field, before anything is queued', async () => {
    const { status, body } = await client.submit({
      input: { prompt: 'hi' },
      config: { provider: 'antropic' },
    });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ code: 'invalid_request' });
    expect(JSON.stringify(body.error)).toContain('config.provider');
  });

  it('stops both processes cleanly on SIGTERM (exit code 0)', async () => {
    const extra = await startWorkerProcess({
      DATABASE_URL: tdb.url,
      AGENTQ_DEFAULT_PROVIDER: 'offline',
    });
    expect(await extra.stop('SIGTERM')).toBe(0);
    const row = await tdb.db
      .selectFrom('agentq.workers')
      .select('id')
      .where('id', '=', extra.id)
      .executeTakeFirst();
    expect(row).toBeUndefined(); // deregistered on the way out
  });
});
