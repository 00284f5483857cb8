// POST /v1/tasks/cancel: cancels the queued and running tasks matching a
// filter as the single cancel does (jobs removed; cancel_requested_at, one
// event and NOTIFY agentq_cancel for running ones), counts first with
// dry_run, and refuses a changed count with 409 count_changed.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { attemptOf, taskClaim, taskFinish } from '../../shared/tasks/attempt-queries.ts';
import { taskCancelMatching } from '../../shared/tasks/task-queries.ts';

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

const word = () => `w${randomBytes(6).toString('hex')}`;

async function submit(prompt: string): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt } });
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

const statuses = async (ids: string[]) =>
  (
    await tdb.db
      .selectFrom('agentq.tasks')
      .select(['id', 'status', 'cancel_requested_at'])
      .where('id', 'in', ids)
      .execute()
  ).reduce<Record<string, string>>((m, r) => ({ ...m, [r.id]: r.status }), {});

const jobsOf = async (ids: string[]) =>
  (
    await sql<{ n: number }>`SELECT count(*)::int AS n FROM graphile_worker._private_jobs
      WHERE payload->>'task_id' = ANY(${ids}::text[])`.execute(tdb.db)
  ).rows[0]!.n;

const cancel = (body: unknown) => api.post('/v1/tasks/cancel', body);

describe('POST /v1/tasks/cancel', () => {
  it('counts, refuses a changed count, then cancels queued and stops running matches', async () => {
    const tag = word();
    const queued = [await submit(`${tag} 1`), await submit(`${tag} 2`), await submit(`${tag} 3`)];
    const running = await submit(`${tag} running`);
    await claim(running);
    const done = await submit(`${tag} done`);
    await taskFinish(
      tdb.db,
      await claim(done),
      { status: 'completed', result: { answer: 'x' } },
      { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 },
    );
    const other = await submit(`${word()} other`);
    const all = [...queued, running, done, other];
    const before = await statuses(all);

    const dry = await cancel({ filter: { q: tag }, dry_run: true });
    expect(dry.status).toBe(200);
    expect(await dry.json()).toEqual({ matched: 4 });
    const stale = await cancel({ filter: { q: tag }, expected_count: 3 });
    expect(stale.status).toBe(409);
    const error = await errorOf(stale);
    expect(error.code).toBe('count_changed');
    expect(error.details).toEqual({ matched: 4 });
    expect(await statuses(all)).toEqual(before); // nothing changed

    const listener = await tdb.pool.connect();
    const heard: string[] = [];
    listener.on('notification', (n) => heard.push(n.payload ?? ''));
    await listener.query('LISTEN agentq_cancel');
    try {
      const res = await cancel({ filter: { q: tag }, expected_count: 4 });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        matched: 4,
        cancelled: 3,
        cancel_requested: 1,
        has_more: false,
      });
      await waitFor(() => heard.length > 0, { what: 'NOTIFY agentq_cancel' });
      expect(heard).toEqual([running]);
    } finally {
      listener.release();
    }
    expect(await statuses(all)).toEqual({
      ...before,
      [queued[0]!]: 'cancelled',
      [queued[1]!]: 'cancelled',
      [queued[2]!]: 'cancelled',
    });
    expect(await jobsOf(queued)).toBe(0);
    expect(await jobsOf([other])).toBe(1);
    const task = (await (await api.get(`/v1/tasks/${running}`)).json()) as {
      status: string;
      cancel_requested_at: string | null;
    };
    expect(task.status).toBe('running');
    expect(task.cancel_requested_at).not.toBeNull();

    // Again: the running task still matches; no second event.
    const again = await cancel({ filter: { q: tag } });
    expect(await again.json()).toEqual({
      matched: 1,
      cancelled: 0,
      cancel_requested: 1,
      has_more: false,
    });
    const events = (await (await api.get(`/v1/tasks/${running}/events`)).json()) as {
      data: Array<{ type: string }>;
    };
    expect(events.data.filter((e) => e.type === 'cancel_requested')).toHaveLength(1);
  });

  it('applies the list filters (status, provider) and touches at most the limit per call', async () => {
    const tag = word();
    const ids = [await submit(`${tag} a`), await submit(`${tag} b`), await submit(`${tag} c`)];
    await claim(ids[2]!);
    const onlyQueued = await cancel({ filter: { q: tag, status: 'queued' }, dry_run: true });
    expect(await onlyQueued.json()).toEqual({ matched: 2 });
    const google = await cancel({ filter: { q: tag, provider: 'google' }, dry_run: true });
    expect(await google.json()).toEqual({ matched: 0 });
    // The cap, at 2: the two oldest go first, and has_more says the rest waits.
    const first = await taskCancelMatching(
      tdb.db,
      { promptContains: tag },
      {
        limit: 2,
        dryRun: false,
      },
    );
    expect(first).toEqual({
      kind: 'done',
      matched: 3,
      cancelled: 2,
      cancelRequested: 0,
      hasMore: true,
    });
    expect(Object.values(await statuses(ids)).sort()).toEqual([
      'cancelled',
      'cancelled',
      'running',
    ]);
  });

  it.each([
    [{}, 'filter is required'],
    [{ filter: { colour: 'red' } }, 'unknown field "filter.colour"'],
    [{ filter: { status: 'done' } }, 'filter.status'],
    [{ filter: {}, expected_count: -1 }, 'expected_count'],
    [{ filter: {}, dry_run: 'yes' }, 'dry_run'],
  ])('answers %j with 400', async (body, message) => {
    const res = await cancel(body);
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toContain(message);
  });

  it('takes an explicit empty filter as every queued and running task', async () => {
    await submit(word());
    const { matched } = (await (await cancel({ filter: {}, dry_run: true })).json()) as {
      matched: number;
    };
    const active = await tdb.db
      .selectFrom('agentq.tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', 'in', ['queued', 'running'])
      .executeTakeFirstOrThrow();
    expect(matched).toBe(active.n);
    expect(matched).toBeGreaterThan(0);
    const res = await cancel({ filter: {}, expected_count: matched });
    expect(res.status).toBe(200);
    const left = await tdb.db
      .selectFrom('agentq.tasks')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'queued')
      .executeTakeFirstOrThrow();
    expect(left.n).toBe(0);
  });
});
