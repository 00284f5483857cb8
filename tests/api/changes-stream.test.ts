// GET /v1/changes: the live task list. A task submitted, claimed and finished
// (with the worker's own queries) appears with each status; filters apply;
// a lost-changes hint (empty NOTIFY payload, a reconnecting client) sends
// `resync`; stats follow changes; the stream ends at its lifetime.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { attemptOf, taskClaim, taskFinish } from '../../shared/tasks/attempt-queries.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
const opened: Array<{ close: () => Promise<void> }> = [];
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig({ AGENTQ_STREAM_MAX_S: '60' }));
});
afterAll(async () => {
  for (const s of opened) await s.close();
  await api?.stop();
  await tdb?.drop();
});

interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, unknown> & { id?: string; status?: string };
}

/** Opens the stream and parses events as they arrive, as EventSource would. */
function openChanges(app: typeof api.app, query = '', headers: Record<string, string> = {}) {
  const events: SseEvent[] = [];
  let text = '';
  const res = Promise.resolve(
    app.request(`/v1/changes?${query}`, { headers: { accept: 'text/event-stream', ...headers } }),
  );
  const reader = res.then((r) => r.body!.getReader());
  const done = (async () => {
    const r = await reader;
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const chunk = await r.read().catch(() => ({ done: true as const, value: undefined }));
      if (chunk.done) return text;
      const piece = decoder.decode(chunk.value, { stream: true });
      text += piece;
      buffer += piece;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const field = (name: string) =>
          block
            .split('\n')
            .find((l) => l.startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim();
        const event = field('event');
        if (event) events.push({ id: field('id'), event, data: JSON.parse(field('data') ?? '{}') });
      }
    }
  })();
  const stream = {
    res,
    events,
    ended: () => done,
    close: async () => void (await (await reader).cancel().catch(() => {})),
    /** Waits for an event matching `pred`. */
    next: (pred: (e: SseEvent) => boolean, what: string) =>
      waitFor(() => events.find(pred), { what, timeoutMs: 15_000 }),
    tasks: (id: string) => events.filter((e) => e.event === 'task' && e.data.id === id),
  };
  opened.push(stream);
  return stream;
}

const word = () => `w${randomBytes(6).toString('hex')}`;

async function submit(prompt: string, config: Record<string, unknown> = {}): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt }, config });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function claim(id: string) {
  const { job_id } = await tdb.db
    .selectFrom('agentq.tasks')
    .select('job_id')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return attemptOf((await taskClaim(tdb.db, { taskId: id, jobId: job_id!, workerId: 'w' }))!);
}

const usage = { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 };

describe('GET /v1/changes', () => {
  it('sends stats first, then a new task and each of its statuses, with stats after', async () => {
    const stream = openChanges(api.app);
    expect((await stream.res).headers.get('content-type')).toContain('text/event-stream');
    const first = await stream.next(() => true, 'a first event');
    expect(first.event).toBe('stats');
    expect(first.data).toMatchObject({ counts: { queued: expect.any(Number) } });

    const id = await submit(`${word()} ${'long '.repeat(100)}`);
    const queued = await stream.next((e) => e.data.id === id, 'the queued task');
    expect(queued.event).toBe('task');
    expect(queued.data).toMatchObject({ status: 'queued', input_truncated: true });
    expect((queued.data.input as { prompt: string }).prompt).toHaveLength(281);
    // Stats follow the change, counting the new task.
    const queuedCount = (first.data.counts as { queued: number }).queued;
    await stream.next(
      (e) =>
        e.event === 'stats' && (e.data.counts as { queued: number }).queued === queuedCount + 1,
      'stats counting it',
    );

    const attempt = await claim(id);
    await stream.next((e) => e.data.id === id && e.data.status === 'running', 'running');
    await taskFinish(tdb.db, attempt, { status: 'completed', result: { answer: 'done' } }, usage);
    const completed = await stream.next(
      (e) => e.data.id === id && e.data.status === 'completed',
      'completed',
    );
    expect(completed.data.result).toEqual({ answer: 'done' });
    expect(stream.tasks(id).map((e) => e.data.status)).toEqual(['queued', 'running', 'completed']);
    // Event ids go up, so a reconnecting EventSource sends Last-Event-ID.
    const ids = stream.events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    await stream.close();
  });

  it('sends only the tasks matching its filters', async () => {
    const tag = word();
    const stream = openChanges(api.app, `q=${tag}&provider=google&status=queued,cancelled`);
    await stream.next((e) => e.event === 'stats', 'the first stats');
    const offline = await submit(`${tag} offline`, { provider: 'offline' });
    const untagged = await submit(`${word()} google`, { provider: 'google' });
    const match = await submit(`${tag} google`, { provider: 'google' });
    await stream.next((e) => e.data.id === match, 'the matching task');
    // Cancelled matches the status filter; running would not.
    expect((await api.post(`/v1/tasks/${match}/cancel`, {})).status).toBe(200);
    await stream.next((e) => e.data.status === 'cancelled', 'its cancellation');
    const sent = stream.events.filter((e) => e.event === 'task').map((e) => e.data.id);
    expect(sent).toEqual([match, match]);
    expect(sent).not.toContain(offline);
    expect(sent).not.toContain(untagged);
    await stream.close();
  });

  it('tells the client to re-read after an empty NOTIFY payload, and on reconnect', async () => {
    const stream = openChanges(api.app);
    await stream.next((e) => e.event === 'stats', 'the first stats');
    await sql`SELECT pg_notify('agentq_task', '')`.execute(tdb.db);
    const resync = await stream.next((e) => e.event === 'resync', 'resync');
    await stream.next(
      (e) => e.event === 'stats' && stream.events.indexOf(e) > stream.events.indexOf(resync),
      'stats after the resync',
    );
    await stream.close();
    const again = openChanges(api.app, '', { 'last-event-id': '7' });
    await again.next((e) => e.event === 'stats', 'the first stats');
    expect(again.events[0]!.event).toBe('resync');
    await again.close();
  });

  it('ends at AGENTQ_STREAM_MAX_S with a retry hint, giving its slot back', async () => {
    const short = await startTestApi(
      tdb,
      testConfig({ AGENTQ_STREAM_MAX_S: '1', AGENTQ_MAX_STREAMS: '1' }),
    );
    try {
      const text = await openChanges(short.app).ended();
      expect(text.startsWith('retry: ')).toBe(true);
      expect(text).toContain('event: stats');
      expect(text).toContain(': stream lifetime reached');
      // The one slot is free again.
      const next = openChanges(short.app);
      expect((await next.res).status).toBe(200);
      await next.close();
    } finally {
      await short.stop();
    }
  });

  it('answers a bad filter with 400, before streaming', async () => {
    const res = await api.get('/v1/changes?provider=nope', { accept: 'text/event-stream' });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/^provider/);
    expect((await api.get('/v1/changes?limit=5')).status).toBe(400);
  });
});
