// Migrations are safe to run from several processes at once, readiness knows
// when they are current, and the views in the README answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { inject } from 'vitest';
import { createDb, createPool } from '../../shared/db/database.ts';
import { readdirSync } from 'node:fs';
import { MIGRATIONS_DIR, migrateDatabase, pendingMigrations } from '../../shared/db/migrate.ts';
import { taskClaim } from '../../shared/tasks/attempt-queries.ts';
import { taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
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
      // Every file in migrations/, each applied by exactly one of the four.
      const files = readdirSync(MIGRATIONS_DIR)
        .filter((f) => f.endsWith('.sql'))
        .map((f) => f.replace(/\.sql$/, ''))
        .sort();
      expect(files).toContain('0003_views');
      expect(applied.sort()).toEqual(files);
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
    await taskInsertWithJob(tdb.db, newTask());
    const { rows } = await sql<Record<string, unknown>>`SELECT * FROM agentq.queue_stats`.execute(
      tdb.db,
    );
    const stats = rows[0]!;
    expect(Number(stats.queued)).toBeGreaterThanOrEqual(1);
    expect(Number(stats.running)).toBeGreaterThanOrEqual(1);
    expect(stats.oldest_queued_age).not.toBeNull();
    expect(stats.running_per_worker).toMatchObject({ 'pool-test': expect.any(Number) });
  });
});
