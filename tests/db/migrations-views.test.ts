// Migrations are safe to run from several processes at once, readiness knows
// when they are current, and the views in the README answer.
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { inject } from 'vitest';
import { createDb, createPool } from '../../shared/db/database.ts';
import { MIGRATIONS_DIR, migrateDatabase, pendingMigrations } from '../../shared/db/migrate.ts';
import { taskClaim } from '../../shared/tasks/attempt-queries.ts';
import { taskCancelQueued, taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { newTask } from '../helpers/fixtures.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

describe('migrations', () => {
  it('apply once when four processes start at the same moment on an empty database', async () => {
    const name = `agentq_mig_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ connectionString: inject('adminUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(inject('adminUrl'));
    url.pathname = `/${name}`;
    const pools = Array.from({ length: 4 }, () =>
      createPool({ connectionString: url.toString(), applicationName: 'agentq-test' }),
    );
    try {
      expect((await pendingMigrations(pools[0]!)).length).toBeGreaterThan(0);
      const results = await Promise.all(pools.map((p) => migrateDatabase(p)));
      const applied = results.flatMap((r) => r.applied);
      const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql'));
      expect(applied.sort()).toEqual(files.map((f) => f.replace(/\.sql$/, '')).sort());
      expect(applied).toContain('0004_fence_and_freeze');
      expect(await pendingMigrations(pools[0]!)).toEqual([]);
      // and the result works: a task can be submitted
      await taskInsertWithJob(createDb(pools[0]!), newTask());
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('views for people at a psql prompt', () => {
  it('task_overview shows a task beside its graphile-worker job', async () => {
    const task = (await taskInsertWithJob(tdb.db, newTask({ input: { prompt: 'overview me' } })))!;
    await taskClaim(tdb.db, { taskId: task.id, jobId: task.job_id!, workerId: 'pool-test' });
    const { rows } = await sql<Record<string, unknown>>`
      SELECT * FROM agentq.task_overview WHERE id = ${task.id}`.execute(tdb.db);
    expect(rows[0]).toMatchObject({
      status: 'running',
      attempts: 1,
      provider: 'offline',
      prompt: 'overview me',
      worker_id: 'pool-test',
      job_id: task.job_id,
    });
  });

  it('queue_stats counts by status and reports the oldest queued age', async () => {
    // Its own rows, in a database of its own: two queued, one running, one cancelled.
    const own = await createTestDatabase();
    try {
      await taskInsertWithJob(own.db, newTask());
      await taskInsertWithJob(own.db, newTask());
      const running = (await taskInsertWithJob(own.db, newTask()))!;
      await taskClaim(own.db, { taskId: running.id, jobId: running.job_id!, workerId: 'pool-s' });
      const cancelled = (await taskInsertWithJob(own.db, newTask()))!;
      await taskCancelQueued(own.db, cancelled.id);
      const { rows } = await sql<Record<string, unknown>>`SELECT * FROM agentq.queue_stats`.execute(
        own.db,
      );
      const stats = rows[0]!;
      expect(stats).toMatchObject({
        queued: 2,
        queued_due: 2,
        running: 1,
        completed: 0,
        failed: 0,
        cancelled: 1,
        running_per_worker: { 'pool-s': 1 },
        workers: 0,
      });
      expect(stats.oldest_queued_age).not.toBeNull();
    } finally {
      await own.drop();
    }
  });
});
