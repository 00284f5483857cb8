// POST /v1/tasks/batch through app.request(): request order, all or nothing,
// errors that name the item, per-item idempotency, one add_jobs call, the
// batch's own body limit; and POST /v1/tasks as one statement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { createDb } from '../../shared/db/database.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(
    tdb,
    testConfig({ AGENTQ_BODY_LIMIT_BYTES: '4096', AGENTQ_BATCH_BODY_LIMIT_BYTES: '200000' }),
  );
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

interface TaskJson {
  id: string;
  status: string;
  priority: number;
  input: { prompt: string };
  config: { model: string };
}
interface BatchJson {
  data: TaskJson[];
  replayed: number[];
}

const count = async (where = 'true') =>
  (
    await sql<{
      tasks: number;
      jobs: number;
    }>`SELECT (SELECT count(*)::int FROM agentq.tasks WHERE ${sql.raw(where)}) AS tasks,
              (SELECT count(*)::int FROM graphile_worker._private_jobs) AS jobs`.execute(tdb.db)
  ).rows[0]!;

const batch = (tasks: unknown[], headers?: Record<string, string>) =>
  api.post('/v1/tasks/batch', { tasks }, headers);

const prompts = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ input: { prompt: `${tag} ${i}` } }));

/** A LISTEN connection that records notifications on `channels`. */
async function listen(channels: string[]) {
  const client = new pg.Client({ connectionString: tdb.url });
  await client.connect();
  const seen: Array<{ channel: string; payload: string }> = [];
  client.on('notification', (n) => seen.push({ channel: n.channel, payload: n.payload ?? '' }));
  for (const ch of channels) await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
  await client.query('LISTEN bench_marker');
  return {
    /**
     * Everything that arrived from commits before now: a marker notified after
     * them arrives after them (delivery follows commit order).
     */
    async settle() {
      const marker = `m${Math.random()}`;
      await tdb.pool.query(`SELECT pg_notify('bench_marker', $1)`, [marker]);
      await waitFor(() => seen.some((n) => n.payload === marker), { what: 'the marker' });
      return seen.filter((n) => n.channel !== 'bench_marker');
    },
    async close() {
      await client.end();
    },
  };
}

describe('POST /v1/tasks/batch', () => {
  it('answers 201 with the tasks in request order, each with its own job', async () => {
    const items = [5, -3, 0, 100, -100].map((priority, i) => ({
      input: { prompt: `ordered ${i}` },
      priority,
    }));
    const res = await batch(items);
    expect(res.status).toBe(201);
    const body = (await res.json()) as BatchJson;
    expect(body.replayed).toEqual([]);
    expect(body.data.map((t) => t.input.prompt)).toEqual(items.map((t) => t.input.prompt));
    expect(body.data.map((t) => t.priority)).toEqual([5, -3, 0, 100, -100]);
    expect(body.data.every((t) => t.status === 'queued')).toBe(true);
    const { rows } = await sql<{ id: string; payload_task: string; job_priority: number }>`
      SELECT t.id, j.payload->>'task_id' AS payload_task, j.priority AS job_priority
      FROM agentq.tasks t JOIN graphile_worker._private_jobs j ON j.id = t.job_id
      WHERE t.id = ANY(${body.data.map((t) => t.id)}::uuid[])`.execute(tdb.db);
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      expect(row.payload_task).toBe(row.id);
      const task = body.data.find((t) => t.id === row.id)!;
      expect(row.job_priority + task.priority).toBe(0);
    }
    // The first status event of each, as a single submit writes it.
    const events = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM agentq.task_events
      WHERE task_id = ANY(${body.data.map((t) => t.id)}::uuid[]) AND seq = 1 AND type = 'status'
        AND data = '{"to": "queued", "attempt": 0}'::jsonb`.execute(tdb.db);
    expect(events.rows[0]!.n).toBe(5);
  });

  it('adds all the jobs with one add_jobs call (one jobs:insert) and notifies once per channel', async () => {
    const l = await listen(['jobs:insert', 'agentq_task', 'agentq_event']);
    try {
      await l.settle();
      const res = await batch(prompts(7, 'one call'));
      expect(res.status).toBe(201);
      const ids = ((await res.json()) as BatchJson).data.map((t) => t.id);
      const seen = await l.settle();
      const byChannel = (ch: string) => seen.filter((n) => n.channel === ch);
      expect(byChannel('jobs:insert')).toHaveLength(1);
      expect(JSON.parse(byChannel('jobs:insert')[0]!.payload)).toMatchObject({ count: 7 });
      // One notification per channel naming all seven, not seven each.
      expect(byChannel('agentq_task')).toHaveLength(1);
      expect(byChannel('agentq_task')[0]!.payload.split(',').sort()).toEqual([...ids].sort());
      expect(byChannel('agentq_event')).toHaveLength(1);
      expect(byChannel('agentq_event')[0]!.payload.split(',').sort()).toEqual([...ids].sort());
    } finally {
      await l.close();
    }
  });

  it('accepts 1,000 tasks, a body larger than the single-submit limit, in one go', async () => {
    const before = await count();
    const res = await batch(prompts(1000, 'max'));
    expect(res.status).toBe(201);
    expect(((await res.json()) as BatchJson).data).toHaveLength(1000);
    const after = await count();
    expect(after.tasks - before.tasks).toBe(1000);
    expect(after.jobs - before.jobs).toBe(1000);
  });

  it('answers 400 for 1,001 tasks, and for none, writing nothing', async () => {
    const before = await count();
    const tooMany = await batch(prompts(1001, 'too many'));
    expect(tooMany.status).toBe(400);
    const error = await errorOf(tooMany);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain('from 1 to 1000 tasks, not 1001');
    expect((await batch([])).status).toBe(400);
    expect(await count()).toEqual(before);
  });

  it('answers 413 payload_too_large above AGENTQ_BATCH_BODY_LIMIT_BYTES', async () => {
    const res = await batch(
      Array.from({ length: 30 }, () => ({ input: { prompt: 'x'.repeat(9000) } })),
    );
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('payload_too_large');
  });

  it('refuses the whole batch when one item is bad, naming its index and field', async () => {
    const before = await count();
    const items: unknown[] = prompts(5, 'all or nothing');
    items[3] = { input: { prompt: 'bad' }, config: { model: '' } };
    const res = await batch(items);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toBe('tasks[3].config.model: must not be empty');
    expect(error.details).toMatchObject({ index: 3 });
    expect((error.details as { issues: unknown[] }).issues[0]).toEqual({
      field: 'tasks[3].config.model',
      message: 'tasks[3].config.model: must not be empty',
    });
    expect(await count()).toEqual(before);
    expect((await count(`input->>'prompt' LIKE 'all or nothing%'`)).tasks).toBe(0);
  });

  it.each([
    [[{ input: { prompt: 'x' } }, { input: {} }], 'tasks[1].input.prompt is required'],
    [[{ input: { prompt: 'x' }, colour: 'red' }], 'unknown field "tasks[0].colour"'],
    [[{ input: { prompt: 'x' } }, 'just text'], 'tasks[1]: must be a JSON object'],
    [
      [{ input: { prompt: 'x' } }, { input: { prompt: 'a\u0000b' } }],
      'tasks[1].input.prompt: contains a NUL',
    ],
    [
      [{ input: { prompt: 'x' } }, { input: { prompt: 'x' }, priority: 101 }],
      'tasks[1].priority: must be at most 100',
    ],
  ])('answers 400 naming the item for %j', async (items, message) => {
    const res = await batch(items);
    expect(res.status).toBe(400);
    const error = await errorOf(res);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain(message);
  });

  it('reports the issues of every bad item in details', async () => {
    const res = await batch([{ input: {} }, { input: { prompt: 'ok' } }, { input: { prompt: 1 } }]);
    const error = await errorOf(res);
    expect(error.details).toMatchObject({
      index: 0,
      issues: [{ field: 'tasks[0].input.prompt' }, { field: 'tasks[2].input.prompt' }],
    });
  });

  it.each([
    [{ tasks: [], extra: 1 }, 'unknown field "extra"'],
    [{ tasks: { input: { prompt: 'x' } } }, 'tasks: must be an array'],
    [{}, 'tasks: must be an array'],
    [[{ input: { prompt: 'x' } }], 'body: must be a JSON object'],
  ])('answers 400 for the envelope %j', async (body, message) => {
    const res = await api.post('/v1/tasks/batch', body);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain(message);
  });

  it('refuses an Idempotency-Key header (keys are per item)', async () => {
    const res = await batch(prompts(1, 'hdr'), { 'idempotency-key': 'whole-batch' });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/each task its own idempotency_key/);
  });

  describe('idempotency', () => {
    it('replays a whole batch: 200, Idempotent-Replayed, the same tasks in order', async () => {
      const items = ['a', 'b', 'c'].map((k) => ({
        input: { prompt: `replay ${k}` },
        idempotency_key: `batch-replay-${k}`,
      }));
      const first = await batch(items);
      expect(first.status).toBe(201);
      const ids = ((await first.json()) as BatchJson).data.map((t) => t.id);
      const before = await count();
      const again = await batch(items);
      expect(again.status).toBe(200);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const body = (await again.json()) as BatchJson;
      expect(body.data.map((t) => t.id)).toEqual(ids);
      expect(body.replayed).toEqual([0, 1, 2]);
      expect(await count()).toEqual(before);
    });

    it('mixes replayed and new items: 201, replayed lists the indexes', async () => {
      const single = await api.post('/v1/tasks', {
        input: { prompt: 'was single' },
        idempotency_key: 'batch-mix',
      });
      const original = (await single.json()) as TaskJson;
      const res = await batch([
        { input: { prompt: 'fresh' } },
        // The same key and body as the single submit: hashed alike, so a replay.
        { idempotency_key: 'batch-mix', input: { prompt: 'was single' } },
      ]);
      expect(res.status).toBe(201);
      const body = (await res.json()) as BatchJson;
      expect(body.replayed).toEqual([1]);
      expect(body.data[1]!.id).toBe(original.id);
      expect(body.data[0]!.input.prompt).toBe('fresh');
    });

    it('fails the whole batch with 409 naming the index when a key is reused with another body', async () => {
      await api.post('/v1/tasks', { input: { prompt: 'one' }, idempotency_key: 'batch-conflict' });
      const before = await count();
      const res = await batch([
        { input: { prompt: 'innocent 0' } },
        { input: { prompt: 'innocent 1' }, idempotency_key: 'batch-conflict-new' },
        { input: { prompt: 'two' }, idempotency_key: 'batch-conflict' },
      ]);
      expect(res.status).toBe(409);
      const error = await errorOf(res);
      expect(error.code).toBe('idempotency_conflict');
      expect(error.message).toMatch(/^tasks\[2\]: /);
      expect(error.details).toMatchObject({ index: 2 });
      expect(await count()).toEqual(before);
      expect((await count(`idempotency_key = 'batch-conflict-new'`)).tasks).toBe(0);
    });

    it('treats a key repeated inside one batch like two submits', async () => {
      const same = await batch([
        { input: { prompt: 'dup' }, idempotency_key: 'in-batch' },
        { input: { prompt: 'dup' }, idempotency_key: 'in-batch' },
      ]);
      expect(same.status).toBe(201);
      const body = (await same.json()) as BatchJson;
      expect(body.data[0]!.id).toBe(body.data[1]!.id);
      expect(body.replayed).toEqual([1]);
      expect((await count(`idempotency_key = 'in-batch'`)).tasks).toBe(1);

      const before = await count();
      const differ = await batch([
        { input: { prompt: 'p' }, idempotency_key: 'in-batch-2' },
        { input: { prompt: 'q' }, idempotency_key: 'in-batch-2' },
      ]);
      expect(differ.status).toBe(409);
      expect((await errorOf(differ)).details).toMatchObject({ index: 1, earlier_index: 0 });
      expect(await count()).toEqual(before);
    });

    it('creates each keyed task once when identical batches and single submits race', async () => {
      const items = Array.from({ length: 20 }, (_, i) => ({
        input: { prompt: `race ${i}` },
        idempotency_key: `batch-race-${i}`,
      }));
      const results = await Promise.all([
        ...Array.from({ length: 4 }, () => batch(items)),
        // Reversed, so the two orders meet head on.
        ...Array.from({ length: 2 }, () => batch([...items].reverse())),
        api.post('/v1/tasks', items[7]!),
      ]);
      for (const r of results) expect([200, 201]).toContain(r.status);
      const bodies = await Promise.all(results.map((r) => r.json()));
      const idsOf = (b: unknown) => ((b as BatchJson).data ?? [b as TaskJson]).map((t) => t.id);
      const forward = idsOf(bodies[0]);
      for (const b of bodies.slice(1, 4)) expect(idsOf(b)).toEqual(forward);
      for (const b of bodies.slice(4, 6)) expect(idsOf(b)).toEqual([...forward].reverse());
      expect(idsOf(bodies[6])).toEqual([forward[7]]);
      expect((await count(`idempotency_key LIKE 'batch-race-%'`)).tasks).toBe(20);
      const orphans = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM graphile_worker._private_jobs j
        WHERE NOT EXISTS (SELECT 1 FROM agentq.tasks t WHERE t.job_id = j.id)`.execute(tdb.db);
      expect(orphans.rows[0]!.n).toBe(0);
    });
  });
});

/** An API over the test database whose pool counts the queries its connections are sent. */
async function countingApi(max: number) {
  let n = 0;
  const pool = new pg.Pool({ connectionString: tdb.url, max });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      n += 1;
      return query(...args);
    };
  });
  const counted = await startTestApi({ ...tdb, pool, db: createDb(pool) });
  return { counted, pool, queries: () => n };
}

describe('POST /v1/tasks is one statement', () => {
  it('sends one query per submit, new or replayed', async () => {
    const { counted, pool, queries } = await countingApi(2);
    try {
      const body = { input: { prompt: 'one statement' }, idempotency_key: 'one-statement' };
      const created = await counted.post('/v1/tasks', body);
      expect(created.status).toBe(201);
      expect(queries()).toBe(1);
      const replayed = await counted.post('/v1/tasks', body);
      expect(replayed.status).toBe(200);
      expect(queries()).toBe(2);
      const conflict = await counted.post('/v1/tasks', { ...body, input: { prompt: 'other' } });
      expect(conflict.status).toBe(409);
      expect(queries()).toBe(3);
      const many = await counted.post('/v1/tasks/batch', { tasks: prompts(50, 'counted') });
      expect(many.status).toBe(201);
      expect(queries()).toBe(4);
    } finally {
      await counted.stop();
      await pool.end();
    }
  });
});

describe('concurrent single submits share a statement', () => {
  it('sends 30 concurrent POST /v1/tasks in a few statements, each answered as if alone', async () => {
    const { counted, pool, queries } = await countingApi(4);
    try {
      const key = 'gathered-same';
      const results = await Promise.all([
        ...Array.from({ length: 26 }, (_, i) =>
          counted.post('/v1/tasks', { input: { prompt: `gathered ${i}` } }),
        ),
        // The same key twice with the same body: one task, one replay.
        counted.post('/v1/tasks', { input: { prompt: 'same' }, idempotency_key: key }),
        counted.post('/v1/tasks', { input: { prompt: 'same' }, idempotency_key: key }),
        // The same key with another body: 409, and the others are not held back.
        counted.post('/v1/tasks', { input: { prompt: 'other' }, idempotency_key: key }),
        counted.post('/v1/tasks', { input: { prompt: 'gathered last' } }),
      ]);
      const statuses = results.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(28);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 409)).toHaveLength(1);
      const bodies = (await Promise.all(results.slice(0, 26).map((r) => r.json()))) as TaskJson[];
      expect(bodies.map((b) => b.input.prompt)).toEqual(
        Array.from({ length: 26 }, (_, i) => `gathered ${i}`),
      );
      expect(new Set(bodies.map((b) => b.id)).size).toBe(26);
      // Far fewer statements than requests: they went in groups.
      expect(queries()).toBeLessThanOrEqual(6);
      expect((await count(`input->>'prompt' LIKE 'gathered%'`)).tasks).toBe(27);
    } finally {
      await counted.stop();
      await pool.end();
    }
  });
});
