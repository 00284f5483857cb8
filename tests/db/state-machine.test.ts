// The status machine lives in the database: these statements are what a
// person at a psql prompt (or a buggy code path) might try.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { newTask } from '../helpers/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { taskInsertWithJob } from '../../shared/tasks/task-queries.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

async function setStatus(id: string, status: string) {
  await sql`UPDATE agentq.tasks SET status = ${status} WHERE id = ${id}`.execute(tdb.db);
}

async function statusEvents(id: string) {
  const { rows } = await sql<{ seq: number; data: { from?: string; to: string } }>`
    SELECT seq, data FROM agentq.task_events WHERE task_id = ${id} AND type = 'status' ORDER BY seq`.execute(
    tdb.db,
  );
  return rows;
}

describe('status machine (enforced by a trigger)', () => {
  it('allows queued → running → completed and writes one status event per transition', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask()))!;
    await setStatus(task.id, 'running');
    await setStatus(task.id, 'completed');
    const events = await statusEvents(task.id);
    expect(events.map((e) => [e.data.from ?? null, e.data.to])).toEqual([
      [null, 'queued'],
      ['queued', 'running'],
      ['running', 'completed'],
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .selectAll()
      .where('id', '=', task.id)
      .executeTakeFirstOrThrow();
    expect(row.started_at).not.toBeNull();
    expect(row.finished_at).not.toBeNull();
  });

  const STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
  const EDGES = new Set([
    'queued>running',
    'queued>cancelled',
    'running>completed',
    'running>failed',
    'running>cancelled',
    'running>queued',
  ]);
  const PAIRS = STATUSES.flatMap((from) => STATUSES.map((to) => [from, to] as const));

  it.each(PAIRS)(
    'task_transition_allowed(%s, %s) holds exactly for the drawn edges',
    async (from, to) => {
      const { rows } = await sql<{ allowed: boolean }>`
        SELECT agentq.task_transition_allowed(${from}, ${to}) AS allowed`.execute(tdb.db);
      expect(rows[0]!.allowed).toBe(EDGES.has(`${from}>${to}`));
    },
  );

  it.each(['completed', 'failed', 'queued_bogus'])(
    'refuses queued → %s and leaves the task queued with no new event',
    async (to) => {
      const task = (await taskInsertWithJob(tdb.db, newTask()))!;
      await expect(setStatus(task.id, to)).rejects.toThrow(
        /cannot go from queued|violates check constraint/,
      );
      const row = await tdb.db
        .selectFrom('agentq.tasks')
        .select(['status', 'last_event_seq'])
        .where('id', '=', task.id)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ status: 'queued', last_event_seq: 1 });
      expect((await statusEvents(task.id)).map((e) => e.data.to)).toEqual(['queued']);
    },
  );

  it.each(['completed', 'failed', 'cancelled'])(
    'never changes a %s task again',
    async (terminal) => {
      const task = (await taskInsertWithJob(tdb.db, newTask()))!;
      if (terminal === 'cancelled') {
        await setStatus(task.id, 'cancelled');
      } else {
        await setStatus(task.id, 'running');
        await setStatus(task.id, terminal);
      }
      for (const next of ['queued', 'running', 'completed', 'failed', 'cancelled'].filter(
        (s) => s !== terminal,
      )) {
        await expect(setStatus(task.id, next)).rejects.toThrow(/never changes/);
      }
      await expect(
        sql`UPDATE agentq.tasks SET result = '{"answer":"rewritten"}' WHERE id = ${task.id}`.execute(
          tdb.db,
        ),
      ).rejects.toThrow(/never changes/);
      const events = await statusEvents(task.id);
      expect(events.at(-1)!.data.to).toBe(terminal);
    },
  );

  it('refuses a new task that does not start queued', async () => {
    await expect(
      sql`INSERT INTO agentq.tasks (id, type, status, input, config) VALUES (${uuidv7()}, 'agent', 'running', '{}', '{}')`.execute(
        tdb.db,
      ),
    ).rejects.toThrow(/must be queued/);
  });

  it('notifies agentq_task with the task id on every status change', async () => {
    const client = await tdb.pool.connect();
    const seen: string[] = [];
    client.on('notification', (n) => seen.push(`${n.channel}:${n.payload}`));
    await client.query('LISTEN agentq_task');
    const task = (await taskInsertWithJob(tdb.db, newTask()))!;
    await setStatus(task.id, 'running');
    const deadline = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    client.release();
    expect(seen).toEqual([`agentq_task:${task.id}`, `agentq_task:${task.id}`]);
  });
});
