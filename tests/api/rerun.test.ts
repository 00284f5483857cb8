// POST /v1/tasks/:id/rerun: a new task with the original's input, resolved
// config, priority, attempts, timeout and metadata (plus rerun_of), for any status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { attemptOf, taskClaim, taskFinish } from '../../shared/tasks/attempt-queries.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb);
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

type Task = Record<string, unknown> & { id: string; status: string; metadata: object };

const rerun = (id: string, init: RequestInit = {}) =>
  api.app.request(`/v1/tasks/${id}/rerun`, { method: 'POST', ...init });

describe('POST /v1/tasks/:id/rerun', () => {
  it('runs a finished task again: same input, config and limits, rerun_of added', async () => {
    const submitted = await api.post('/v1/tasks', {
      input: { prompt: 'What is 6 * 7?' },
      config: { provider: 'offline', model: 'offline-demo', max_steps: 3, tools: ['calculator'] },
      priority: 7,
      max_attempts: 2,
      timeout_s: 45,
      metadata: { team: 'search', rerun_of: 'stale' },
      idempotency_key: 'rerun-original',
      run_at: '2999-01-01T00:00:00Z',
    });
    const original = (await submitted.json()) as Task;
    const { job_id } = await tdb.db
      .selectFrom('agentq.tasks')
      .select('job_id')
      .where('id', '=', original.id)
      .executeTakeFirstOrThrow();
    const claimed = await taskClaim(tdb.db, { taskId: original.id, jobId: job_id!, workerId: 'w' });
    await taskFinish(
      tdb.db,
      attemptOf(claimed!),
      { status: 'completed', result: { answer: '42' } },
      { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 },
    );

    const res = await rerun(original.id);
    expect(res.status).toBe(201);
    const copy = (await res.json()) as Task;
    expect(res.headers.get('location')).toBe(`/v1/tasks/${copy.id}`);
    expect(copy.id).not.toBe(original.id);
    expect(copy).toMatchObject({
      status: 'queued',
      input: original.input,
      config: original.config,
      priority: 7,
      max_attempts: 2,
      timeout_s: 45,
      metadata: { team: 'search', rerun_of: original.id },
      idempotency_key: null,
      attempts: 0,
      result: null,
    });
    // It runs now, not at the original's run_at, and it has its own job.
    expect(Date.parse(copy.run_at as string)).toBeLessThan(Date.parse('2999-01-01T00:00:00Z'));
    const job = await tdb.db
      .selectFrom('agentq.tasks')
      .select('job_id')
      .where('id', '=', copy.id)
      .executeTakeFirstOrThrow();
    expect(job.job_id).not.toBeNull();
    // The original is untouched; a second rerun is another task.
    expect(((await (await api.get(`/v1/tasks/${original.id}`)).json()) as Task).status).toBe(
      'completed',
    );
    const again = (await (await rerun(original.id)).json()) as Task;
    expect(again.id).not.toBe(copy.id);
  });

  it('reruns a queued task too, and refuses unknown ids, bad ids and form bodies', async () => {
    const queued = (await (await api.post('/v1/tasks', { input: { prompt: 'q' } })).json()) as Task;
    expect((await rerun(queued.id)).status).toBe(201);
    const missing = await rerun('0190a0a0-0000-7000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect((await errorOf(missing)).code).toBe('not_found');
    expect((await errorOf(await rerun('nope'))).code).toBe('invalid_id');
    const form = await rerun(queued.id, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
  });

  it('refuses a model the server no longer allows', async () => {
    const task = (await (
      await api.post('/v1/tasks', {
        input: { prompt: 'x' },
        config: { provider: 'offline', model: 'old-model' },
      })
    ).json()) as Task;
    const narrowed = await startTestApi(
      tdb,
      testConfig({ AGENTQ_ALLOWED_MODELS: 'offline=offline-demo' }),
    );
    try {
      const res = await narrowed.app.request(`/v1/tasks/${task.id}/rerun`, { method: 'POST' });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).message).toContain('old-model is not allowed');
    } finally {
      await narrowed.stop();
    }
  });
});
