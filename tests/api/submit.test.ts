// POST /v1/tasks through app.request(): strict bodies, resolved config,
// idempotency, and every bad input answered with the error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig({ AGENTQ_BODY_LIMIT_BYTES: '4096' }));
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

describe('POST /v1/tasks', () => {
  it('accepts a prompt alone and stores the resolved config', async () => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'What is 17 * 23?' } });
    expect(res.status).toBe(201);
    const task = (await res.json()) as Record<string, unknown>;
    expect(res.headers.get('location')).toBe(`/v1/tasks/${task.id}`);
    expect(task).toMatchObject({
      type: 'agent',
      status: 'queued',
      input: { prompt: 'What is 17 * 23?' },
      config: {
        provider: 'offline',
        model: 'offline-demo',
        max_steps: 8,
        tools: ['calculator', 'current_time'],
      },
      attempts: 0,
      max_attempts: 3,
      priority: 0,
      result: null,
      error: null,
      usage: { input_tokens: 0, output_tokens: 0, llm_calls: 0, tool_calls: 0 },
    });
    expect(task.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/); // UUIDv7
    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .select(['config', 'job_id'])
      .where('id', '=', task.id as string)
      .executeTakeFirstOrThrow();
    expect(row.config.provider).toBe('offline');
    expect(row.job_id).not.toBeNull();
  });

  it('keeps every field the client sent', async () => {
    const res = await api.post('/v1/tasks', {
      type: 'agent',
      input: { prompt: 'hello' },
      config: {
        provider: 'openai',
        model: 'gpt-4o',
        max_steps: 3,
        temperature: 0.5,
        tools: ['calculator'],
        system_prompt: 'Be brief.',
      },
      priority: 5,
      run_at: '2030-01-01T00:00:00Z',
      max_attempts: 2,
      timeout_s: 30,
      metadata: { team: 'search', tags: ['a', 'b'] },
    });
    expect(res.status).toBe(201);
    const task = (await res.json()) as Record<string, unknown>;
    expect(task).toMatchObject({
      config: {
        provider: 'openai',
        model: 'gpt-4o',
        max_steps: 3,
        temperature: 0.5,
        tools: ['calculator'],
        system_prompt: 'Be brief.',
      },
      priority: 5,
      run_at: '2030-01-01T00:00:00.000Z',
      max_attempts: 2,
      timeout_s: 30,
      metadata: { team: 'search', tags: ['a', 'b'] },
    });
  });

  it.each([
    [{ input: { prompt: 'x' }, colour: 'red' }, 'unknown field "colour"'],
    [{ input: { prompt: 'x', extra: 1 } }, 'unknown field "input.extra"'],
    [
      { input: { prompt: 'x' }, config: { provider: 'openai', retries: 2 } },
      'unknown field "config.retries"',
    ],
    [
      { input: { prompt: 'x' }, config: { provider: 'anthropic' } },
      'config.provider: must be one of: openai, google, offline',
    ],
    [
      { input: { prompt: 'x' }, config: { tools: ['shell'] } },
      'config.tools.0: must be one of: calculator, current_time, http_get',
    ],
    [{ input: {} }, 'input.prompt is required'],
    [{}, 'input is required'],
    [{ input: { prompt: '   ' } }, 'input.prompt: must not be empty'],
    [{ input: { prompt: 42 } }, 'input.prompt: expected string, got 42'],
    [{ input: { prompt: 'x' }, priority: 101 }, 'priority: must be at most 100'],
    [{ input: { prompt: 'x' }, priority: 1.5 }, 'priority: must be a whole number'],
    [{ input: { prompt: 'x' }, max_attempts: 0 }, 'max_attempts: must be at least 1'],
    [{ input: { prompt: 'x' }, run_at: 'tomorrow' }, 'run_at: must be an ISO-8601 timestamp'],
    [{ input: { prompt: 'x' }, type: 'shell' }, 'type: must be "agent"'],
    [
      { input: { prompt: 'x' }, config: { tools: ['calculator', 'calculator'] } },
      'config.tools: must not repeat a tool',
    ],
    [{ input: { prompt: 'x' }, metadata: [1, 2] }, 'metadata: must be a JSON object'],
    [{ input: { prompt: 'x\u0000y' } }, 'body.input.prompt: contains a NUL character'],
    [{ input: { prompt: 'x' }, metadata: { 'k\u0000': 1 } }, 'contains a NUL character'],
    [{ input: { prompt: 'x' }, metadata: { s: '\ud800' } }, 'unpaired UTF-16 surrogate'],
    [[1, 2, 3], 'body: must be a JSON object'],
    ['just a string', 'body: must be a JSON object'],
  ])('answers 400 invalid_request for %j', async (body, message) => {
    const res = await api.post('/v1/tasks', body);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain(message);
  });

  it('refuses deep nesting in metadata with a 400', async () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const res = await api.post('/v1/tasks', { input: { prompt: 'x' }, metadata: { deep } });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/nested deeper/);
  });

  it('answers malformed JSON with 400, a wrong content type with 415, an empty body with 400', async () => {
    const bad = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"input": ',
    });
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('invalid_request');
    const text = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(text.status).toBe(415);
    expect((await errorOf(text)).code).toBe('unsupported_media_type');
    const empty = await api.app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '',
    });
    expect(empty.status).toBe(400);
  });

  it('answers a body over the limit with 413 payload_too_large', async () => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'x'.repeat(10_000) } });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
  });

  describe('idempotency', () => {
    it('replays the same request with the original task and 200', async () => {
      const body = {
        input: { prompt: 'once' },
        idempotency_key: 'k-replay',
        metadata: { a: 1, b: 2 },
      };
      const first = await api.post('/v1/tasks', body);
      expect(first.status).toBe(201);
      const task = (await first.json()) as { id: string };
      // Same body, keys in another order.
      const again = await api.post('/v1/tasks', {
        metadata: { b: 2, a: 1 },
        idempotency_key: 'k-replay',
        input: { prompt: 'once' },
      });
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(((await again.json()) as { id: string }).id).toBe(task.id);
      const n = await sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM agentq.tasks WHERE idempotency_key = 'k-replay'`.execute(
        tdb.db,
      );
      expect(n.rows[0]!.n).toBe(1);
    });

    it('takes the key from the Idempotency-Key header too', async () => {
      const first = await api.post(
        '/v1/tasks',
        { input: { prompt: 'hdr' } },
        { 'idempotency-key': 'k-header' },
      );
      const again = await api.post(
        '/v1/tasks',
        { input: { prompt: 'hdr' } },
        { 'idempotency-key': 'k-header' },
      );
      expect(first.status).toBe(201);
      expect(again.status).toBe(200);
    });

    it('answers 409 idempotency_conflict for the same key with another body', async () => {
      await api.post('/v1/tasks', { input: { prompt: 'one' }, idempotency_key: 'k-conflict' });
      const res = await api.post('/v1/tasks', {
        input: { prompt: 'two' },
        idempotency_key: 'k-conflict',
      });
      expect(res.status).toBe(409);
      expect((await errorOf(res)).code).toBe('idempotency_conflict');
    });

    it('creates exactly one task when 10 identical requests race', async () => {
      const body = { input: { prompt: 'race' }, idempotency_key: 'k-race' };
      const results = await Promise.all(
        Array.from({ length: 10 }, () => api.post('/v1/tasks', body)),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(9);
      const ids = new Set(
        await Promise.all(results.map(async (r) => ((await r.json()) as { id: string }).id)),
      );
      expect(ids.size).toBe(1);
    });
  });
});
