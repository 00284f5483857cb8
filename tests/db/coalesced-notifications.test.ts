// migrations/0005: one notification per statement per channel, naming the
// distinct task ids (or empty, meaning "re-read", past NOTIFY's 8,000 bytes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import pg from 'pg';
import { newTask } from '../helpers/fixtures.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { taskInsertManyWithJobs, taskInsertWithJob } from '../../shared/tasks/task-queries.ts';

let tdb: TestDatabase;
let client: pg.Client;
const seen: Array<{ channel: string; payload: string }> = [];
beforeAll(async () => {
  tdb = await createTestDatabase();
  client = new pg.Client({ connectionString: tdb.url });
  await client.connect();
  client.on('notification', (n) => seen.push({ channel: n.channel, payload: n.payload ?? '' }));
  for (const ch of ['agentq_task', 'agentq_event', 'test_marker']) {
    await client.query(`LISTEN ${pg.escapeIdentifier(ch)}`);
  }
});
afterAll(async () => {
  await client?.end();
  await tdb?.drop();
});

/**
 * Runs `write`, then returns what it notified: a marker sent after it commits
 * arrives after its notifications (delivery follows commit order).
 */
async function notificationsOf(write: () => Promise<unknown>) {
  await settle(); // what earlier statements sent is not this one's
  seen.length = 0;
  await write();
  await settle();
  return seen.filter((n) => n.channel !== 'test_marker');
}

async function settle() {
  const marker = `m${Math.random()}`;
  await sql`SELECT pg_notify('test_marker', ${marker})`.execute(tdb.db);
  await waitFor(() => seen.some((n) => n.payload === marker), { what: 'the marker' });
}

const submitted = async (n: number) => {
  const result = await taskInsertManyWithJobs(
    tdb.db,
    Array.from({ length: n }, () => newTask()),
  );
  if (result.kind !== 'submitted') throw new Error('not submitted');
  return result.outcomes.map((o) => o.task.id);
};

describe('coalesced notifications', () => {
  it('a single submit notifies its id once on each channel, as before', async () => {
    let id = '';
    const got = await notificationsOf(async () => {
      id = (await taskInsertWithJob(tdb.db, newTask()))!.id;
    });
    expect(got).toEqual([
      { channel: 'agentq_event', payload: id },
      { channel: 'agentq_task', payload: id },
    ]);
  });

  it('a batch insert of tasks sends one notification per channel naming them all', async () => {
    let ids: string[] = [];
    const got = await notificationsOf(async () => {
      ids = await submitted(50);
    });
    expect(got).toHaveLength(2);
    for (const n of got) expect(n.payload.split(',').sort()).toEqual([...ids].sort());
  });

  it('a multi-row event insert sends one agentq_event naming the distinct tasks', async () => {
    const ids = await submitted(3);
    const got = await notificationsOf(() =>
      sql`INSERT INTO agentq.task_events (task_id, seq, type, data)
          SELECT id, s, 'message', '{}' FROM unnest(${ids}::uuid[]) id, generate_series(10, 12) s`.execute(
        tdb.db,
      ),
    );
    expect(got).toHaveLength(1);
    expect(got[0]!.channel).toBe('agentq_event');
    expect(got[0]!.payload.split(',').sort()).toEqual([...ids].sort());
  });

  it('sends an empty payload ("re-read") when the ids would pass 8,000 bytes', async () => {
    const got = await notificationsOf(() => submitted(300));
    expect(got.map((n) => [n.channel, n.payload]).sort()).toEqual([
      ['agentq_event', ''],
      ['agentq_task', ''],
    ]);
  });

  it('an insert of no rows notifies nothing', async () => {
    const got = await notificationsOf(() =>
      sql`INSERT INTO agentq.task_events (task_id, seq, type) SELECT id, 99, 'message' FROM agentq.tasks WHERE false`.execute(
        tdb.db,
      ),
    );
    expect(got).toEqual([]);
  });

  it('status updates keep one agentq_task per task', async () => {
    const ids = await submitted(2);
    const got = await notificationsOf(() =>
      sql`UPDATE agentq.tasks SET status = 'cancelled' WHERE id = ANY(${ids}::uuid[])`.execute(
        tdb.db,
      ),
    );
    expect(
      got
        .filter((n) => n.channel === 'agentq_task')
        .map((n) => n.payload)
        .sort(),
    ).toEqual([...ids].sort());
  });
});
