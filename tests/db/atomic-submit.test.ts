// A task and its graphile-worker job commit together or not at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { taskInsertManyWithJobs, taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
import { newTask } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const count = async (table: string) =>
  Number(
    (await sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql.raw(table)}`.execute(tdb.db))
      .rows[0]!.n,
  );

describe('atomic submit', () => {
  it('inserts the task and its job, and the task points at the job', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ priority: 7 })))!;
    const { rows } = await sql<{
      id: number;
      task_identifier: string;
      priority: number;
      payload: unknown;
    }>`
      SELECT j.id, t.identifier AS task_identifier, j.priority, j.payload FROM graphile_worker._private_jobs j
      JOIN graphile_worker._private_tasks t ON t.id = j.task_id WHERE j.id = ${task.job_id}`.execute(
      tdb.db,
    );
    expect(rows[0]).toMatchObject({
      task_identifier: 'agent',
      priority: -7,
      payload: { task_id: task.id },
    });
  });

  it('leaves no task behind when adding the job fails', async () => {
    const tasksBefore = await count('agentq.tasks');
    const jobsBefore = await count('graphile_worker._private_jobs');
    await sql`CREATE FUNCTION pg_temp_fail() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected job failure'; END $$`.execute(tdb.db);
    await sql`CREATE TRIGGER inject_failure BEFORE INSERT ON graphile_worker._private_jobs
      FOR EACH ROW EXECUTE FUNCTION pg_temp_fail()`.execute(tdb.db);
    try {
      await expect(taskInsertWithJob(tdb.db, newTask())).rejects.toThrow(/injected job failure/);
    } finally {
      await sql`DROP TRIGGER inject_failure ON graphile_worker._private_jobs`.execute(tdb.db);
      await sql`DROP FUNCTION pg_temp_fail()`.execute(tdb.db);
    }
    expect(await count('agentq.tasks')).toBe(tasksBefore);
    expect(await count('graphile_worker._private_jobs')).toBe(jobsBefore);
  });

  it('leaves no task and no job of a batch behind when one row is refused', async () => {
    const tasksBefore = await count('agentq.tasks');
    const jobsBefore = await count('graphile_worker._private_jobs');
    const batch = [newTask(), newTask(), newTask({ priority: 500 }), newTask()];
    await expect(taskInsertManyWithJobs(tdb.db, batch)).rejects.toThrow(/check constraint/);
    expect(await count('agentq.tasks')).toBe(tasksBefore);
    expect(await count('graphile_worker._private_jobs')).toBe(jobsBefore);
  });

  it('never leaves a job behind when racing submits share an idempotency key', async () => {
    const jobsBefore = await count('graphile_worker._private_jobs');
    // Hold the submits back behind a lock, so they all look for the key at
    // the same moment once it is released, find nothing, and race to insert.
    const blocker = await tdb.pool.connect();
    let outcomes: unknown[];
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE agentq.tasks IN SHARE MODE');
      const racing = Promise.all(
        Array.from({ length: 6 }, () =>
          taskInsertWithJob(tdb.db, newTask({ idempotencyKey: 'atomic-race', requestHash: 'h' })),
        ),
      );
      await waitFor(
        async () =>
          (
            await blocker.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_locks
               WHERE relation = 'agentq.tasks'::regclass AND NOT granted`,
            )
          ).rows[0]!.n === 6,
        { what: 'six blocked submits' },
      );
      await blocker.query('COMMIT');
      outcomes = await racing;
    } finally {
      blocker.release();
    }
    expect(outcomes.filter((t) => t !== undefined)).toHaveLength(1);
    expect(await count('graphile_worker._private_jobs')).toBe(jobsBefore + 1);
  });

  it('leaves no job behind when the task row is refused', async () => {
    const tasksBefore = await count('agentq.tasks');
    const jobsBefore = await count('graphile_worker._private_jobs');
    // priority 500 is outside the column's CHECK; the API never sends it, SQL would.
    await expect(taskInsertWithJob(tdb.db, newTask({ priority: 500 }))).rejects.toThrow(
      /check constraint/,
    );
    expect(await count('agentq.tasks')).toBe(tasksBefore);
    expect(await count('graphile_worker._private_jobs')).toBe(jobsBefore);
  });

  it('never has a task without a job or a job without a task after many submits', async () => {
    await Promise.all(Array.from({ length: 30 }, () => taskInsertWithJob(tdb.db, newTask())));
    const { rows } = await sql<{ orphans: number; missing: number }>`
      SELECT
        (SELECT count(*)::int FROM agentq.tasks t WHERE t.status = 'queued'
           AND NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j WHERE j.id = t.job_id)) AS missing,
        (SELECT count(*)::int FROM graphile_worker._private_jobs j
           WHERE NOT EXISTS (SELECT 1 FROM agentq.tasks t WHERE t.job_id = j.id)) AS orphans`.execute(
      tdb.db,
    );
    expect(rows[0]).toEqual({ orphans: 0, missing: 0 });
  });
});
