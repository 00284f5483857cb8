// GET, list, cancel, events and health through app.request(). Worker-side
// transitions are made with the worker's own query functions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import {
  appendAttemptEvent,
  attemptOf,
  taskClaim,
  taskFinish,
} from '../../shared/tasks/attempt-queries.ts';

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

interface TaskJson {
  id: string;
  status: string;
  attempts: number;
  result: { answer: string } | null;
  error: { code: string } | null;
  cancel_requested_at: string | null;
}

async function submit(body: Record<string, unknown> = {}): Promise<TaskJson> {
  const res = await api.post('/v1/tasks', { input: { prompt: 'hello' }, ...body });
  expect(res.status).toBe(201);
  return (await res.json()) as TaskJson;
}

async function claim(id: string) {
  const row = await tdb.db
    .selectFrom('agentq.tasks')
    .select('job_id')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  const claimed = await taskClaim(tdb.db, {
    taskId: id,
    jobId: row.job_id!,
    workerId: 'pool-test',
  });
  expect(claimed?.status).toBe('running');
  return attemptOf(claimed!);
}

const usage = { input_tokens: 1, output_tokens: 2, llm_calls: 1, tool_calls: 0 };

describe('GET /v1/tasks/:id', () => {
  it('reads a task; 404 for an unknown id; 400 for a malformed one', async () => {
    const task = await submit();
    const res = await api.get(`/v1/tasks/${task.id}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as TaskJson).id).toBe(task.id);
    const missing = await api.get('/v1/tasks/0190a0a0-0000-7000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect((await errorOf(missing)).code).toBe('not_found');
    for (const bad of [
      'nope',
      '1',
      "1' OR '1'='1",
      '%00',
      '0190a0a0-0000-7000-8000-00000000000Z',
    ]) {
      const r = await api.get(`/v1/tasks/${encodeURIComponent(bad)}`);
      expect(r.status).toBe(400);
      expect((await errorOf(r)).code).toBe('invalid_id');
    }
  });

  it.each(['-1', '61', 'abc', '1e3', ''])('refuses wait=%s with a 400', async (wait) => {
    const task = await submit();
    const res = await api.get(`/v1/tasks/${task.id}?wait=${wait}`);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe('invalid_request');
  });

  it('refuses unknown query parameters', async () => {
    const task = await submit();
    const res = await api.get(`/v1/tasks/${task.id}?wiat=5`);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain('unknown field "wiat"');
  });

  it('long-poll: returns as soon as the task finishes, woken by NOTIFY', async () => {
    // A re-check interval far beyond the wait: only the NOTIFY can wake this poll in time.
    const slow = await startTestApi(tdb, testConfig(), { recheckMs: 600_000 });
    try {
      const task = await submit();
      const attempt = await claim(task.id);
      const started = Date.now();
      const poll = slow.get(`/v1/tasks/${task.id}?wait=20`);
      // Finish it a moment later, from "the worker".
      setTimeout(
        () =>
          void taskFinish(
            tdb.db,
            attempt,
            { status: 'completed', result: { answer: '42' } },
            usage,
          ),
        300,
      );
      const res = await poll;
      const elapsed = Date.now() - started;
      const body = (await res.json()) as TaskJson;
      expect(body.status).toBe('completed');
      expect(body.result).toEqual({ answer: '42' });
      expect(elapsed).toBeLessThan(5_000); // woken by the NOTIFY, not by the 20 s deadline
    } finally {
      await slow.stop();
    }
  });

  it('long-poll: answers with the current state when the wait runs out', async () => {
    const task = await submit();
    const started = Date.now();
    const res = await api.get(`/v1/tasks/${task.id}?wait=1`);
    expect(((await res.json()) as TaskJson).status).toBe('queued');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('long-poll: a finished task answers at once', async () => {
    const task = await submit();
    await api.post(`/v1/tasks/${task.id}/cancel`, {});
    const started = Date.now();
    const res = await api.get(`/v1/tasks/${task.id}?wait=30`);
    expect(((await res.json()) as TaskJson).status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('GET /v1/tasks', () => {
  it('lists newest first and pages with an opaque cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit({ metadata: { batch: 'paging' } })).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await api.get(`/v1/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { data: TaskJson[]; next_cursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((t) => t.id));
      cursor = page.next_cursor;
    } while (cursor);
    const mine = seen.filter((id) => ids.includes(id));
    expect(mine).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('filters by status and time', async () => {
    const a = await submit();
    await api.post(`/v1/tasks/${a.id}/cancel`, {});
    const res = await api.get('/v1/tasks?status=cancelled&limit=200');
    const page = (await res.json()) as { data: TaskJson[] };
    expect(page.data.length).toBeGreaterThan(0);
    expect(page.data.every((t) => t.status === 'cancelled')).toBe(true);
    expect(page.data.some((t) => t.id === a.id)).toBe(true);
    const future = await api.get(
      `/v1/tasks?created_after=${encodeURIComponent('2999-01-01T00:00:00Z')}`,
    );
    expect(((await future.json()) as { data: unknown[] }).data).toEqual([]);
    const both = await api.get('/v1/tasks?status=queued,cancelled&limit=200');
    expect(
      ((await both.json()) as { data: TaskJson[] }).data.every((t) =>
        ['queued', 'cancelled'].includes(t.status),
      ),
    ).toBe(true);
  });

  it.each([
    ['limit=0', 'invalid_request'],
    ['limit=201', 'invalid_request'],
    ['limit=-5', 'invalid_request'],
    ['limit=ten', 'invalid_request'],
    ['status=done', 'invalid_request'],
    ['created_after=yesterday', 'invalid_request'],
    ['cursor=not-a-cursor!', 'invalid_cursor'],
    [`cursor=${Buffer.from('{"v":1,"id":"x"}').toString('base64url')}`, 'invalid_cursor'],
    ['cursor=' + 'A'.repeat(5000), 'invalid_cursor'],
    ['sort=asc', 'invalid_request'],
    ['limit=1&limit=2', 'invalid_request'],
  ])('answers %s with 400 %s', async (query, code) => {
    const res = await api.get(`/v1/tasks?${query}`);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).code).toBe(code);
  });
});

describe('POST /v1/tasks/:id/cancel', () => {
  it('cancels a queued task at once and removes its job', async () => {
    const task = await submit();
    const res = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(res.status).toBe(200);
    const body = (await res.json()) as TaskJson;
    expect(body.status).toBe('cancelled');
    expect(body.error?.code).toBe('cancelled');
    const jobs = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM graphile_worker._private_jobs WHERE payload->>'task_id' = ${task.id}`.execute(
      tdb.db,
    );
    expect(jobs.rows[0]!.n).toBe(0);
    const again = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(again.status).toBe(200);
  });

  it('asks the worker to cancel a running task: 202, an event, and NOTIFY agentq_cancel', async () => {
    const task = await submit();
    await claim(task.id);
    const client = await tdb.pool.connect();
    const heard: string[] = [];
    client.on('notification', (n) => heard.push(n.payload ?? ''));
    await client.query('LISTEN agentq_cancel');
    const res = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(res.status).toBe(202);
    const body = (await res.json()) as TaskJson;
    expect(body.status).toBe('running');
    expect(body.cancel_requested_at).not.toBeNull();
    const twice = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(twice.status).toBe(202);
    const deadline = Date.now() + 5000;
    while (heard.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    client.release();
    expect(heard).toEqual([task.id]);
    const events = await api.get(`/v1/tasks/${task.id}/events`);
    const types = ((await events.json()) as { data: { type: string }[] }).data.map((e) => e.type);
    expect(types.filter((t) => t === 'cancel_requested')).toHaveLength(1);
  });

  it('answers 409 already_finished for a completed task, 404 for an unknown one', async () => {
    const task = await submit();
    const attempt = await claim(task.id);
    await taskFinish(tdb.db, attempt, { status: 'completed', result: { answer: 'done' } }, usage);
    const res = await api.post(`/v1/tasks/${task.id}/cancel`, {});
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('already_finished');
    const missing = await api.post('/v1/tasks/0190a0a0-0000-7000-8000-000000000000/cancel', {});
    expect(missing.status).toBe(404);
  });
});

describe('GET /v1/tasks/:id/events', () => {
  it('pages the step log with after and limit', async () => {
    const task = await submit();
    const attempt = await claim(task.id);
    for (let i = 0; i < 3; i++)
      await appendAttemptEvent(tdb.db, attempt, { type: 'message', data: { text: `m${i}` } });
    const res = await api.get(`/v1/tasks/${task.id}/events?limit=2`);
    const page = (await res.json()) as {
      data: { seq: number; type: string }[];
      next_after: number;
    };
    expect(page.data.map((e) => [e.seq, e.type])).toEqual([
      [1, 'status'],
      [2, 'status'],
    ]);
    const rest = await api.get(`/v1/tasks/${task.id}/events?after=${page.next_after}`);
    const restPage = (await rest.json()) as { data: { seq: number; type: string }[] };
    expect(restPage.data.map((e) => e.type)).toEqual(['message', 'message', 'message']);
    expect(restPage.data.map((e) => e.seq)).toEqual([3, 4, 5]);
    // The documented bounds are inclusive: after=1000000000 (ten digits) is an empty page, not a 400.
    const top = await api.get(`/v1/tasks/${task.id}/events?after=1000000000`);
    expect(top.status).toBe(200);
    expect(await top.json()).toEqual({ data: [], next_after: 1_000_000_000 });
    expect((await api.get(`/v1/tasks/${task.id}/events?after=1000000001`)).status).toBe(400);
  });

  it('streams events as SSE and ends after the terminal status', async () => {
    const task = await submit();
    const attempt = await claim(task.id);
    const res = await api.app.request(`/v1/tasks/${task.id}/events`, {
      headers: { accept: 'text/event-stream' },
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    setTimeout(async () => {
      await appendAttemptEvent(tdb.db, attempt, { type: 'answer', data: { text: 'hi' } });
      await taskFinish(tdb.db, attempt, { status: 'completed', result: { answer: 'hi' } }, usage);
    }, 200);
    const text = await res.text(); // resolves only when the server ends the stream
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(ids).toEqual([1, 2, 3, 4]);
    expect(types).toEqual(['status', 'status', 'answer', 'status']);
    expect(text).toContain('"to":"completed"');
  });

  it('resumes a stream from Last-Event-ID', async () => {
    const task = await submit();
    await api.post(`/v1/tasks/${task.id}/cancel`, {});
    const res = await api.app.request(`/v1/tasks/${task.id}/events`, {
      headers: { accept: 'text/event-stream', 'last-event-id': '1' },
    });
    const text = await res.text();
    expect([...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([2]);
  });

  it('answers 404 for an unknown task and 400 for bad paging', async () => {
    expect((await api.get('/v1/tasks/0190a0a0-0000-7000-8000-000000000000/events')).status).toBe(
      404,
    );
    const task = await submit();
    expect((await api.get(`/v1/tasks/${task.id}/events?after=-1`)).status).toBe(400);
    expect((await api.get(`/v1/tasks/${task.id}/events?limit=100000`)).status).toBe(400);
  });
});

describe('health, routing and auth', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await api.get('/healthz')).status).toBe(200);
    const ready = await api.get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('answers unknown routes and methods with the error shape', async () => {
    const res = await api.get('/v2/nothing');
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('not_found');
    const del = await api.app.request('/v1/tasks', { method: 'DELETE' });
    expect(del.status).toBe(404);
    await errorOf(del);
  });

  it('requires a bearer token on /v1 when tokens are configured', async () => {
    const secured = await startTestApi(
      tdb,
      testConfig({ AGENTQ_API_TOKENS: 'token-one-123,token-two-456' }),
    );
    try {
      const none = await secured.get('/v1/tasks');
      expect(none.status).toBe(401);
      expect((await errorOf(none)).code).toBe('unauthorized');
      expect((await secured.get('/v1/tasks', { authorization: 'Bearer wrong-token' })).status).toBe(
        401,
      );
      expect(
        (await secured.get('/v1/tasks', { authorization: 'Bearer token-two-456' })).status,
      ).toBe(200);
      expect(
        (await secured.get('/v1/tasks', { authorization: 'Bearer token-one-123' })).status,
      ).toBe(200);
      expect((await secured.get('/healthz')).status).toBe(200);
    } finally {
      await secured.stop();
    }
  });
});
