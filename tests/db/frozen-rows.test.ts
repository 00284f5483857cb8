// What the database itself refuses, whoever asks (a person at psql, a buggy
// code path): any change to a finished task, any change to the step log
// (rows leave only with their task), a new task that arrives half-run, and a
// claim counter going down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { newTask } from '../helpers/fixtures.ts';
import { taskFindById, taskInsertWithJob } from '../../shared/tasks/task-queries.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const run = (query: ReturnType<typeof sql>) => query.execute(tdb.db);

async function finished(status: 'completed' | 'failed' | 'cancelled') {
  const task = (await taskInsertWithJob(tdb.db, newTask()))!;
  if (status === 'cancelled') {
    await run(sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ${task.id}`);
  } else {
    await run(sql`UPDATE agentq.tasks SET status = 'running', worker_id = 'pool-x',
      attempts = 1, claim = 1 WHERE id = ${task.id}`);
    await run(sql`UPDATE agentq.tasks SET status = ${status},
      result = ${status === 'completed' ? '{"answer":"42"}' : null}::jsonb WHERE id = ${task.id}`);
  }
  return (await taskFindById(tdb.db, task.id))!;
}

async function eventCount(taskId: string) {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM agentq.task_events WHERE task_id = ${taskId}`.execute(tdb.db);
  return rows[0]!.n;
}

// Every column a finished row has, with a change to try on it.
const CHANGES: Array<[string, string]> = [
  ['status', `status = 'queued'`],
  ['type', `type = 'other'`],
  ['input', `input = '{"prompt":"rewritten"}'`],
  ['config', `config = config || '{"model":"other"}'`],
  ['result', `result = '{"answer":"rewritten"}'`],
  ['error', `error = '{"code":"internal_error","message":"x","retryable":false}'`],
  ['usage', `usage = '{"input_tokens":9,"output_tokens":9,"llm_calls":9,"tool_calls":9}'`],
  ['attempts', `attempts = attempts + 1`],
  ['claim', `claim = claim + 1`],
  ['max_attempts', `max_attempts = 7`],
  ['priority', `priority = 5`],
  ['timeout_ms', `timeout_ms = 1234`],
  ['idempotency_key', `idempotency_key = 'late-key'`],
  ['request_hash', `request_hash = 'late-hash'`],
  ['metadata', `metadata = '{"edited":true}'`],
  ['worker_id', `worker_id = 'pool-other'`],
  ['job_id', `job_id = 424242`],
  ['last_event_seq', `last_event_seq = last_event_seq + 1`],
  ['created_at', `created_at = created_at - interval '1 day'`],
  ['updated_at', `updated_at = updated_at + interval '1 day'`],
  ['run_at', `run_at = run_at + interval '1 day'`],
  ['started_at', `started_at = now() - interval '1 day'`],
  ['finished_at', `finished_at = finished_at + interval '1 day'`],
  ['cancel_requested_at', `cancel_requested_at = now()`],
  ['webhook_url', `webhook_url = 'https://late.example.com/hook'`],
  [
    'trace_context',
    `trace_context = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'`,
  ],
];

describe('a finished task is frozen whole', () => {
  it('covers every column of agentq.tasks', async () => {
    const { rows } = await sql<{ column_name: string }>`
      SELECT column_name FROM information_schema.columns
      WHERE table_schema = 'agentq' AND table_name = 'tasks'`.execute(tdb.db);
    expect(rows.map((r) => r.column_name).sort()).toEqual(
      [...CHANGES.map(([c]) => c), 'id'].sort(),
    );
  });

  for (const status of ['completed', 'failed', 'cancelled'] as const) {
    it.each(CHANGES)(`refuses a change to %s of a ${status} task`, async (_column, assignment) => {
      const task = await finished(status);
      await expect(
        run(sql`UPDATE agentq.tasks SET ${sql.raw(assignment)} WHERE id = ${task.id}`),
      ).rejects.toThrow(/never changes/);
      expect(await taskFindById(tdb.db, task.id)).toEqual(task);
    });
  }

  it('lets an update that changes nothing through, without even moving updated_at', async () => {
    const task = await finished('completed');
    await run(
      sql`UPDATE agentq.tasks SET status = status, type = ${'agent'} WHERE id = ${task.id}`,
    );
    expect(await taskFindById(tdb.db, task.id)).toEqual(task);
  });

  it('still lets retention delete a finished task, and its step log goes with it', async () => {
    const task = await finished('completed');
    expect(await eventCount(task.id)).toBeGreaterThan(0);
    await run(sql`DELETE FROM agentq.tasks WHERE id = ${task.id}`);
    expect(await taskFindById(tdb.db, task.id)).toBeUndefined();
    expect(await eventCount(task.id)).toBe(0);
  });
});

describe('the step log is append-only', () => {
  it('refuses UPDATE of an event', async () => {
    const task = await finished('completed');
    await expect(
      run(sql`UPDATE agentq.task_events SET data = '{"to":"failed"}' WHERE task_id = ${task.id}`),
    ).rejects.toThrow(/append-only/);
    await expect(
      run(sql`UPDATE agentq.task_events SET seq = seq + 100 WHERE task_id = ${task.id}`),
    ).rejects.toThrow(/append-only/);
  });

  it('refuses DELETE of an event while its task exists, running or finished', async () => {
    const running = (await taskInsertWithJob(tdb.db, newTask()))!;
    const done = await finished('failed');
    for (const id of [running.id, done.id]) {
      const before = await eventCount(id);
      await expect(run(sql`DELETE FROM agentq.task_events WHERE task_id = ${id}`)).rejects.toThrow(
        /append-only/,
      );
      expect(await eventCount(id)).toBe(before);
    }
  });

  it('refuses TRUNCATE', async () => {
    await expect(run(sql`TRUNCATE agentq.task_events`)).rejects.toThrow(/append-only/);
  });

  it('lets many tasks be deleted at once with their events (retention)', async () => {
    const tasks = await Promise.all([finished('completed'), finished('cancelled')]);
    const ids = tasks.map((t) => t.id);
    await run(sql`DELETE FROM agentq.tasks WHERE id = ANY(${ids}::uuid[])`);
    for (const id of ids) expect(await eventCount(id)).toBe(0);
  });
});

describe('a new task arrives empty', () => {
  const insert = (columns: string, values: string) =>
    run(
      sql`INSERT INTO agentq.tasks (id, type, input, config ${sql.raw(columns)})
          VALUES (${uuidv7()}, 'agent', '{"prompt":"p"}', '{}' ${sql.raw(values)})`,
    );

  it.each([
    ['attempts', '99'],
    ['claim', '5'],
    ['result', `'{"answer":"precooked"}'`],
    ['error', `'{"code":"timeout","message":"x","retryable":true}'`],
    ['usage', `'{"input_tokens":1,"output_tokens":0,"llm_calls":0,"tool_calls":0}'`],
    ['worker_id', `'pool-x'`],
    ['started_at', 'now()'],
    ['finished_at', 'now()'],
    ['cancel_requested_at', 'now()'],
  ])('refuses an INSERT with %s set', async (column, value) => {
    await expect(insert(`, ${column}`, `, ${value}`)).rejects.toThrow(
      new RegExp(`cannot arrive with ${column} set`),
    );
  });

  it('names every preset column at once', async () => {
    await expect(insert(', attempts, result', `, 99, '{"answer":"x"}'`)).rejects.toThrow(
      /cannot arrive with attempts, result set/,
    );
  });

  it('starts the step log at 1 whatever last_event_seq says', async () => {
    const id = uuidv7();
    await run(sql`INSERT INTO agentq.tasks (id, type, input, config, last_event_seq)
      VALUES (${id}, 'agent', '{"prompt":"p"}', '{}', 50)`);
    const { rows } = await sql<{ last_event_seq: number; seq: number }>`
      SELECT t.last_event_seq, e.seq FROM agentq.tasks t
      JOIN agentq.task_events e ON e.task_id = t.id WHERE t.id = ${id}`.execute(tdb.db);
    expect(rows).toEqual([{ last_event_seq: 1, seq: 1 }]);
  });
});

describe('the claim counter', () => {
  it('never goes down, even on a running task', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask()))!;
    await run(sql`UPDATE agentq.tasks SET status = 'running', claim = 2, attempts = 1
      WHERE id = ${task.id}`);
    await expect(
      run(sql`UPDATE agentq.tasks SET claim = claim - 1 WHERE id = ${task.id}`),
    ).rejects.toThrow(/claim cannot go down/);
    await expect(
      run(sql`UPDATE agentq.tasks SET status = 'queued', claim = 0, attempts = 0
        WHERE id = ${task.id}`),
    ).rejects.toThrow(/claim cannot go down/);
  });
});
