// A job left locked by a worker that is gone from agentq.workers (it stopped
// while its last job completion was lost) is unlocked by the next recovery
// pass instead of staying locked for graphile-worker's 4 hours; a job locked
// by a live worker, or locked only recently, is left alone.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskInsertWithJob } from '../../shared/tasks/task-queries.ts';
import { workerHeartbeat, workerRecoverDead } from '../../shared/workers/worker-queries.ts';
import { newTask } from '../helpers/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const HOUR = 3_600_000;

async function lockedJob(lockedBy: string, ageSql: string) {
  const task = (await taskInsertWithJob(tdb.db, newTask()))!;
  await sql`UPDATE graphile_worker._private_jobs
            SET locked_by = ${lockedBy}, locked_at = now() - ${ageSql}::interval
            WHERE id = ${task.job_id}`.execute(tdb.db);
  return task.job_id!;
}

const lockOf = async (jobId: number) =>
  (
    await sql<{ locked_by: string | null }>`
      SELECT locked_by FROM graphile_worker._private_jobs WHERE id = ${jobId}`.execute(tdb.db)
  ).rows[0]!.locked_by;

describe('stray job locks', () => {
  it('unlocks jobs locked long ago by a worker with no row, and only those', async () => {
    await workerHeartbeat(tdb.db, {
      id: 'pool-alive',
      hostname: 'h',
      pid: 1,
      version: 'test',
      concurrency: 1,
    });
    const gone = await lockedJob('pool-gone', '2 hours');
    const goneRecently = await lockedJob('pool-gone-recently', '1 minute');
    const alive = await lockedJob('pool-alive', '2 hours');

    const result = await workerRecoverDead(tdb.db, HOUR, 'pool-self');
    expect(result.unlockedWorkers).toEqual(['pool-gone']);
    expect(await lockOf(gone)).toBeNull();
    expect(await lockOf(goneRecently)).toBe('pool-gone-recently');
    expect(await lockOf(alive)).toBe('pool-alive');
  });
});
