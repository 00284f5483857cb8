// migrations/0006 and shared/webhooks/webhook-queries.ts: the delivery job
// commits (or rolls back) with the terminal status, and `webhook` events are
// appended to a finished, frozen task without changing its row.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { newTask } from '../helpers/fixtures.ts';
import { taskFindById, taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
import { webhookAttemptRecord } from '../../shared/webhooks/webhook-queries.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const run = (query: ReturnType<typeof sql>) => query.execute(tdb.db);
const HOOK = 'https://hooks.example.com/agentq';

async function webhookJobs(taskId: string) {
  const { rows } = await sql<{ payload: Record<string, unknown>; priority: number }>`
    SELECT j.payload, j.priority FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    WHERE t.identifier = 'webhook' AND j.payload->>'task_id' = ${taskId}
    ORDER BY j.id`.execute(tdb.db);
  return rows;
}

async function toRunning(id: string) {
  await run(sql`UPDATE agentq.tasks SET status = 'running', worker_id = 'pool-x',
    attempts = 1, claim = 1 WHERE id = ${id}`);
}

describe('the webhook job', () => {
  it('is added by the terminal status change of a task with a webhook_url, once', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    expect(task.webhook_url).toBe(HOOK);
    await toRunning(task.id);
    expect(await webhookJobs(task.id)).toEqual([]);
    await run(sql`UPDATE agentq.tasks SET status = 'completed',
      result = '{"answer":"42"}' WHERE id = ${task.id}`);
    expect(await webhookJobs(task.id)).toEqual([
      {
        payload: { task_id: task.id, delivery_id: `msg_${task.id}`, attempt: 1 },
        priority: -100,
      },
    ]);
  });

  it('rolls back with the status change', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    await expect(
      tdb.db.transaction().execute(async (trx) => {
        await sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ${task.id}`.execute(trx);
        expect((await webhookJobs(task.id)).length).toBe(0); // not visible outside yet
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await webhookJobs(task.id)).toEqual([]);
    expect((await taskFindById(tdb.db, task.id))!.status).toBe('queued');
  });

  it('is not added for a task without a webhook_url, nor for a requeue', async () => {
    const plain = (await taskInsertWithJob(tdb.db, newTask()))!;
    await run(sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ${plain.id}`);
    expect(await webhookJobs(plain.id)).toEqual([]);
    const hooked = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    await toRunning(hooked.id);
    await run(sql`UPDATE agentq.tasks SET status = 'queued' WHERE id = ${hooked.id}`);
    expect(await webhookJobs(hooked.id)).toEqual([]);
  });

  it('refuses a webhook_url that is not http(s) (the CHECK, for psql users)', async () => {
    await expect(
      taskInsertWithJob(tdb.db, newTask({ webhookUrl: 'file:///etc/passwd' })),
    ).rejects.toThrow(/check constraint/);
  });
});

describe('webhookAttemptRecord', () => {
  it('appends webhook events after the terminal status without changing the frozen row', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    await run(sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ${task.id}`);
    const before = (await taskFindById(tdb.db, task.id))!;
    // Concurrent appends (the row lock orders them) get distinct, consecutive seqs.
    const seqs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        webhookAttemptRecord(tdb.db, task.id, { attempt: i + 1, outcome: 'retrying' }),
      ),
    );
    const last = before.last_event_seq;
    expect([...seqs].sort((a, b) => a! - b!)).toEqual(
      Array.from({ length: 8 }, (_, i) => last + 1 + i),
    );
    expect(await taskFindById(tdb.db, task.id)).toEqual(before);
    const { rows } = await sql<{ type: string }>`
      SELECT type FROM agentq.task_events WHERE task_id = ${task.id} AND seq > ${last}`.execute(
      tdb.db,
    );
    expect(rows.every((r) => r.type === 'webhook')).toBe(true);
  });

  it('adds the next attempt in the same transaction', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    await run(sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ${task.id}`);
    const payload = { task_id: task.id, delivery_id: `msg_${task.id}`, attempt: 2 };
    const seq = await webhookAttemptRecord(
      tdb.db,
      task.id,
      { outcome: 'retrying' },
      { payload, delayMs: 60_000 },
    );
    expect((await webhookJobs(task.id)).map((j) => j.payload)).toEqual([
      { ...payload, attempt: 1 },
      payload,
    ]);
    // The job runs a minute from the database's now, the time the event announces.
    const { rows } = await sql<{ announced: string; run_at: Date; delay_s: number }>`
      SELECT e.data->>'next_attempt_at' AS announced, j.run_at,
             extract(epoch FROM j.run_at - e.created_at)::float8 AS delay_s
      FROM agentq.task_events e, graphile_worker._private_jobs j
      WHERE e.task_id = ${task.id} AND e.seq = ${seq!}
        AND j.payload->>'task_id' = ${task.id} AND (j.payload->>'attempt')::int = 2`.execute(
      tdb.db,
    );
    // (to the millisecond; the two sides may round the microseconds differently)
    expect(
      Math.abs(Date.parse(rows[0]!.announced) - rows[0]!.run_at.getTime()),
    ).toBeLessThanOrEqual(1);
    expect(rows[0]!.delay_s).toBeGreaterThan(59);
    expect(rows[0]!.delay_s).toBeLessThan(61);
  });

  it('writes nothing for a task that is not finished, or gone', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ webhookUrl: HOOK })))!;
    expect(await webhookAttemptRecord(tdb.db, task.id, { outcome: 'x' })).toBeUndefined();
    expect(
      await webhookAttemptRecord(tdb.db, '01890000-0000-7000-8000-000000000000', {}),
    ).toBeUndefined();
  });
});
