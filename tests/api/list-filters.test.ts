// GET /v1/tasks filters for the dashboard: provider, model, q (an id prefix or
// text in the prompt), cursor paging under a filter, and view=summary.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
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

interface Task {
  id: string;
  input: { prompt: string };
  config: { provider: string; model: string };
  result: { answer: string } | null;
  input_truncated?: boolean;
  result_truncated?: boolean;
}

/** A word no other test's prompt contains. */
const word = () => `w${randomBytes(6).toString('hex')}`;

async function submit(prompt: string, config: Record<string, unknown> = {}): Promise<Task> {
  const res = await api.post('/v1/tasks', { input: { prompt }, config });
  expect(res.status).toBe(201);
  return (await res.json()) as Task;
}

async function list(query: string): Promise<{ data: Task[]; next_cursor: string | null }> {
  const res = await api.get(`/v1/tasks?${query}`);
  expect(res.status, query).toBe(200);
  return (await res.json()) as { data: Task[]; next_cursor: string | null };
}
const ids = async (query: string) => (await list(query)).data.map((t) => t.id);

describe('GET /v1/tasks filters', () => {
  it('filters by provider and model of the resolved config, one or several', async () => {
    const tag = word();
    const offline = await submit(`${tag} a`, { provider: 'offline', model: 'offline-demo' });
    const other = await submit(`${tag} b`, { provider: 'offline', model: 'other-model' });
    const google = await submit(`${tag} c`, { provider: 'google', model: 'gemini-2.0-flash' });
    expect(await ids(`q=${tag}&provider=google`)).toEqual([google.id]);
    expect(await ids(`q=${tag}&provider=offline`)).toEqual([other.id, offline.id]);
    expect(await ids(`q=${tag}&model=other-model,gemini-2.0-flash`)).toEqual([google.id, other.id]);
    expect(await ids(`q=${tag}&provider=offline&model=gemini-2.0-flash`)).toEqual([]);
    expect(await ids(`q=${tag}&provider=openai`)).toEqual([]);
  });

  it('matches ids by prefix: whole, 8 hex digits, with dashes, any case', async () => {
    const task = await submit(word());
    expect(await ids(`q=${task.id}`)).toEqual([task.id]);
    expect(await ids(`q=${task.id.toUpperCase()}`)).toEqual([task.id]);
    const prefixes = [task.id.slice(0, 8), task.id.slice(0, 13), task.id.slice(0, 23)];
    for (const prefix of prefixes) expect(await ids(`q=${prefix}&limit=200`)).toContain(task.id);
    // The last 12 hex digits are random: a 32-digit prefix without dashes finds it alone.
    expect(await ids(`q=${task.id.replaceAll('-', '')}`)).toEqual([task.id]);
    // Not an id prefix: searched as text, and no prompt holds it.
    expect(await ids(`q=${task.id.slice(0, 7)}`)).toEqual([]);
  });

  it('searches the prompt case-insensitively, with LIKE wildcards taken literally', async () => {
    const tag = word();
    const percent = await submit(`${tag} is 100% Sure_thing`);
    const plain = await submit(`${tag} is 1000 sure things`);
    expect(await ids(`q=${tag.toUpperCase()}`)).toEqual([plain.id, percent.id]);
    expect(await ids(`q=${encodeURIComponent(`${tag} is 100%`)}`)).toEqual([percent.id]);
    expect(await ids(`q=${encodeURIComponent('SURE_THING')}`)).toEqual([percent.id]);
    expect(await ids(`q=${encodeURIComponent(`${tag} is 1_0`)}`)).toEqual([]);
    expect(await ids(`q=${encodeURIComponent(`${tag}\\`)}`)).toEqual([]);
    // Blank means no search.
    expect((await list('q=%20%20&limit=200')).data.length).toBeGreaterThan(1);
  });

  it('pages through a filter with the cursor: each match once, newest first', async () => {
    const tag = word();
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await submit(`${tag} ${i}`)).id);
      await submit(`unrelated ${i}`); // interleaved, filtered out
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(`q=${tag}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((t) => t.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...mine].reverse());
  });

  it.each([
    ['provider=bedrock', 'provider'],
    ['model=', 'model'],
    ['model=a,,b', 'model'],
    [`q=${'x'.repeat(201)}`, 'q'],
    ['view=brief', 'view'],
    [`status=${Array(51).fill('queued').join(',')}`, 'status'],
  ])('answers %s with 400 naming the field', async (query, field) => {
    const res = await api.get(`/v1/tasks?${query}`);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.message.startsWith(field)).toBe(true);
  });
});

describe('GET /v1/tasks?view=summary', () => {
  it('cuts long prompts and answers to 280 characters plus "…", and says so', async () => {
    const tag = word();
    const long = await submit(`${tag} ${'é'.repeat(5000)}`);
    const short = await submit(`${tag} short`);
    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .select('job_id')
      .where('id', '=', long.id)
      .executeTakeFirstOrThrow();
    const claimed = await taskClaim(tdb.db, { taskId: long.id, jobId: row.job_id!, workerId: 'w' });
    const usage = { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 };
    await taskFinish(
      tdb.db,
      attemptOf(claimed!),
      { status: 'completed', result: { answer: 'a'.repeat(10_000) } },
      usage,
    );

    const summary = await list(`q=${tag}&view=summary`);
    const [s1, s2] = summary.data;
    expect(s1!.id).toBe(short.id);
    expect(s1!.input.prompt).toBe(`${tag} short`);
    expect([s1!.input_truncated, s1!.result_truncated]).toEqual([false, false]);
    expect(s2!.id).toBe(long.id);
    expect(s2!.input.prompt).toBe(`${tag} ${'é'.repeat(280 - tag.length - 1)}…`);
    expect(s2!.result!.answer).toBe(`${'a'.repeat(280)}…`);
    expect([s2!.input_truncated, s2!.result_truncated]).toEqual([true, true]);

    // The default view is whole, without the markers.
    const full = await list(`q=${tag}`);
    expect(full.data[1]!.input.prompt).toHaveLength(tag.length + 1 + 5000);
    expect(full.data[1]!.result!.answer).toHaveLength(10_000);
    expect(full.data[1]).not.toHaveProperty('input_truncated');
  });
});
