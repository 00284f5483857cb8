// migrations/0008 and shared/db/partitions.ts: tasks and their events in
// daily partitions by UUIDv7 id, made ahead, and retention that drops whole
// old days (deleting in batches only where a day cannot go whole), never
// touching a queued or running task. Real Postgres throughout.
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { UUID } from 'uuidv7';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createDb, createPool, type Db } from '../../shared/db/database.ts';
import { MIGRATIONS_DIR, migrateDatabase } from '../../shared/db/migrate.ts';
import { ensurePartitions, runRetention } from '../../shared/db/partitions.ts';
import { attemptOf, taskClaim, taskFinish } from '../../shared/tasks/attempt-queries.ts';
import { appendEvent } from '../../shared/tasks/event-queries.ts';
import {
  taskCancelQueued,
  taskInsertWithJob,
  taskSubmit,
  type TaskRow,
} from '../../shared/tasks/task-queries.ts';
import { newTask } from '../helpers/fixtures.ts';
import { startWorkerProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const DAY = 86_400_000;
const USAGE = { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 };

/** A UUIDv7 of the time `ms` (what the API would have made then). */
function idAt(ms: number): string {
  const r = () => Math.floor(Math.random() * 2 ** 30);
  return UUID.fromFieldsV7(ms, r() % 4096, r(), r() * 4 + (r() % 4)).toString();
}

const dayName = (ms: number) => new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

async function testDatabase(): Promise<TestDatabase> {
  const tdb = await createTestDatabase();
  cleanups.push(() => tdb.drop());
  return tdb;
}

/** A finished task of `ms`, through the real statements (submit, claim, events, finish). */
async function finishedTask(
  db: Db,
  ms: number,
  status: 'completed' | 'failed' | 'cancelled',
  extra: Parameters<typeof newTask>[0] = {},
): Promise<TaskRow> {
  const task = (await taskInsertWithJob(db, newTask({ id: idAt(ms), ...extra })))!;
  if (status === 'cancelled') return (await taskCancelQueued(db, task.id))!;
  const running = (await taskClaim(db, { taskId: task.id, jobId: task.job_id!, workerId: 'w' }))!;
  await appendEvent(db, { taskId: task.id, type: 'llm_call', data: { n: 1 } });
  const outcome =
    status === 'completed'
      ? ({ status, result: { answer: 'ok' } } as const)
      : ({
          status,
          error: { code: 'provider_rejected', message: 'no', retryable: false },
        } as const);
  await taskFinish(db, attemptOf(running), outcome, USAGE);
  await sql`SELECT graphile_worker.complete_jobs(ARRAY[${task.job_id}]::bigint[])`.execute(db);
  return task;
}

async function exists(db: Db, id: string) {
  const { rows } = await sql<{ n: number }>`
    SELECT (SELECT count(*) FROM agentq.tasks WHERE id = ${id})
         + (SELECT count(*) FROM agentq.task_events WHERE task_id = ${id}) AS n`.execute(db);
  return rows[0]!.n > 0;
}

async function relationExists(db: Db, name: string) {
  const { rows } = await sql<{ r: string | null }>`SELECT to_regclass(${name})::text AS r`.execute(
    db,
  );
  return rows[0]!.r !== null;
}

/**
 * A database laid out as a long-running installation's: the (empty) history
 * partition of the migration gone, one partition per day for the last 45.
 */
async function databaseWithPastDays(): Promise<TestDatabase> {
  const tdb = await testDatabase();
  await sql`DROP TABLE agentq.task_events_history, agentq.tasks_history`.execute(tdb.db);
  await sql`SELECT agentq.create_partitions(now() - interval '45 days', now())`.execute(tdb.db);
  return tdb;
}

describe('migrating a populated database to partitions (0008)', () => {
  let pool: pg.Pool;
  let db: Db;
  let name: string;
  const admin = () => new pg.Client({ connectionString: inject('adminUrl') });

  beforeAll(async () => {
    name = `agentq_part_${process.pid}_${Date.now()}`;
    const a = admin();
    await a.connect();
    await a.query(`CREATE DATABASE ${name}`);
    await a.end();
    const url = new URL(inject('adminUrl'));
    url.pathname = `/${name}`;
    pool = createPool({ connectionString: url.toString(), applicationName: 'agentq-test' });
    db = createDb(pool);
    // Up to 0007 only.
    const dir = await mkdtemp(path.join(tmpdir(), 'agentq-0007-'));
    for (const f of await readdir(MIGRATIONS_DIR)) {
      if (f.endsWith('.sql') && f < '0008')
        await copyFile(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
    }
    await migrateDatabase(pool, { dir });
    await rm(dir, { recursive: true });
  });
  afterAll(async () => {
    await pool?.end();
    const a = admin();
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  });

  it('keeps every row, id, event, key and job, and the rules and notifications still hold', async () => {
    // 0007's submit: the row (its key in the row's UNIQUE column) and its job.
    const submit0007 = async (
      ms: number,
      opts: { key?: string; hash?: string; webhook?: string } = {},
    ) => {
      const id = idAt(ms);
      await sql`INSERT INTO agentq.tasks (id, type, input, config, idempotency_key, request_hash,
                  webhook_url, metadata)
                VALUES (${id}, 'agent', '{"prompt":"p"}', '{"provider":"offline"}', ${opts.key ?? null},
                  ${opts.hash ?? null}, ${opts.webhook ?? null}, '{"m":1}')`.execute(db);
      await sql`UPDATE agentq.tasks SET job_id = (graphile_worker.add_job('agent',
                  json_build_object('task_id', id))).id WHERE id = ${id}`.execute(db);
      return (await db
        .selectFrom('agentq.tasks')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow()) as TaskRow;
    };
    const now = Date.now();
    const finish = async (t: TaskRow, status: 'completed' | 'failed') => {
      const running = (await taskClaim(db, { taskId: t.id, jobId: t.job_id!, workerId: 'w' }))!;
      await appendEvent(db, { taskId: t.id, type: 'message', data: { text: 'hi' } });
      await taskFinish(
        db,
        attemptOf(running),
        status === 'completed'
          ? { status, result: { answer: '42' } }
          : { status, error: { code: 'timeout', message: 'slow', retryable: false } },
        USAGE,
      );
      await sql`SELECT graphile_worker.complete_jobs(ARRAY[${t.job_id}]::bigint[])`.execute(db);
    };
    const queued = await submit0007(now, { key: 'key-queued', hash: 'h1' });
    const running = await submit0007(now, { key: 'key-running', hash: 'h2' });
    await taskClaim(db, { taskId: running.id, jobId: running.job_id!, workerId: 'w-live' });
    await appendEvent(db, { taskId: running.id, type: 'llm_call', data: { model: 'm' } });
    const completed = await submit0007(now - 3 * DAY, {
      key: 'key-done',
      hash: 'h3',
      webhook: 'https://example.test/hook',
    });
    await finish(completed, 'completed');
    const failed = await submit0007(now - 60 * DAY);
    await finish(failed, 'failed');
    const cancelled = await submit0007(now - DAY);
    await taskCancelQueued(db, cancelled.id);
    // A clock that ran ahead: an id past the days the migration makes.
    const ahead = await submit0007(now + 40 * DAY);

    const snapshot = async () => {
      const tasks = await sql<{ t: unknown }>`
        SELECT to_jsonb(t) AS t FROM agentq.tasks t ORDER BY id`.execute(db);
      const events = await sql<{ e: unknown }>`
        SELECT to_jsonb(e) AS e FROM agentq.task_events e ORDER BY task_id, seq`.execute(db);
      const jobs = await sql<{ j: unknown }>`
        SELECT jsonb_build_object('id', j.id, 'task', t.identifier, 'payload', j.payload) AS j
        FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
        ORDER BY j.id`.execute(db);
      return { tasks: tasks.rows, events: events.rows, jobs: jobs.rows };
    };
    const before = await snapshot();
    expect(before.tasks).toHaveLength(6);
    expect(before.events.length).toBeGreaterThan(12);
    expect(before.jobs.map((j) => (j.j as { task: string }).task).sort()).toEqual([
      'agent',
      'agent',
      'agent',
      'webhook',
    ]);

    const { applied } = await migrateDatabase(pool);
    expect(applied).toEqual(['0008_partitions']);
    expect(await snapshot()).toEqual(before);

    // Each row sits in its day's partition; the old one in the history partition.
    const { rows: homes } = await sql<{ id: string; part: string }>`
      SELECT id, tableoid::regclass::text AS part FROM agentq.tasks`.execute(db);
    const home = new Map(homes.map((r) => [r.id, r.part]));
    expect(home.get(queued.id)).toBe(`agentq.tasks_p${dayName(now)}`);
    expect(home.get(failed.id)).toBe('agentq.tasks_history');
    expect(home.get(ahead.id)).toBe('agentq.tasks_future');
    const { rows: evHomes } = await sql<{ part: string }>`
      SELECT DISTINCT tableoid::regclass::text AS part FROM agentq.task_events
      WHERE task_id = ${completed.id}`.execute(db);
    expect(evHomes).toEqual([{ part: 'agentq.task_events_history' }]);
    expect(home.get(cancelled.id)).toBe(`agentq.tasks_p${dayName(now - DAY)}`);

    // The keys moved to their own table, pointing at the same tasks.
    const { rows: keys } = await sql<{ key: string; task_id: string }>`
      SELECT key, task_id FROM agentq.idempotency_keys ORDER BY key`.execute(db);
    expect(keys).toEqual([
      { key: 'key-done', task_id: completed.id },
      { key: 'key-queued', task_id: queued.id },
      { key: 'key-running', task_id: running.id },
    ]);
    // A replay finds the original; another request with the key conflicts.
    const replay = await taskSubmit(
      db,
      newTask({ idempotencyKey: 'key-queued', requestHash: 'h1' }),
    );
    expect(replay).toMatchObject({ kind: 'replayed', task: { id: queued.id } });
    const clash = await taskSubmit(db, newTask({ idempotencyKey: 'key-done', requestHash: 'x' }));
    expect(clash).toMatchObject({ kind: 'conflict', task: { id: completed.id } });

    // The status machine and the frozen rows still hold.
    await expect(
      sql`UPDATE agentq.tasks SET status = 'queued' WHERE id = ${completed.id}`.execute(db),
    ).rejects.toThrow(/finished task never changes/);
    await expect(
      sql`UPDATE agentq.tasks SET status = 'completed' WHERE id = ${queued.id}`.execute(db),
    ).rejects.toThrow(/cannot go from queued to completed/);
    await expect(
      sql`INSERT INTO agentq.tasks (id, type, status, input, config)
          VALUES (${idAt(Date.now())}, 'agent', 'running', '{}', '{}')`.execute(db),
    ).rejects.toThrow(/must be queued/);
    await expect(
      sql`DELETE FROM agentq.task_events WHERE task_id = ${completed.id}`.execute(db),
    ).rejects.toThrow(/append-only/);

    // Notifications: a submit, a claim and an event each wake their channel.
    const listener = new pg.Client({ connectionString: pool.options.connectionString });
    await listener.connect();
    cleanups.push(() => listener.end());
    const seen: string[] = [];
    listener.on('notification', (n) => seen.push(`${n.channel}:${n.payload}`));
    await listener.query('LISTEN agentq_task; LISTEN agentq_event');
    const fresh = (await taskInsertWithJob(db, newTask()))!;
    await taskClaim(db, { taskId: queued.id, jobId: queued.job_id!, workerId: 'w' });
    await appendEvent(db, { taskId: running.id, type: 'message', data: {} });
    await waitFor(
      () =>
        [
          `agentq_task:${fresh.id}`,
          `agentq_event:${fresh.id}`,
          `agentq_task:${queued.id}`,
          `agentq_event:${running.id}`,
        ].every((s) => seen.includes(s)),
      { what: 'the notifications of a submit, a claim and an event' },
    );

    // A deleted task takes its events and its key along.
    await sql`DELETE FROM agentq.tasks WHERE id = ${completed.id}`.execute(db);
    expect(await exists(db, completed.id)).toBe(false);
    const again = await taskSubmit(db, newTask({ idempotencyKey: 'key-done', requestHash: 'x' }));
    expect(again.kind).toBe('created');
  });
});

describe('partitions made ahead', () => {
  it('covers today and the next 14 days, and a submit makes a missing day itself', async () => {
    const tdb = await testDatabase();
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM agentq.partitions
      WHERE from_time >= date_trunc('day', now(), 'UTC')`.execute(tdb.db);
    expect(rows[0]!.n).toBeGreaterThanOrEqual(14);
    expect(await ensurePartitions(tdb.db)).toBe(0); // idempotent

    // Remove today and every day ahead: as if nothing had made them.
    const { rows: days } = await sql<{ t: string; e: string }>`
      SELECT tasks_partition::text AS t, events_partition::text AS e FROM agentq.partitions
      WHERE to_time > now()`.execute(tdb.db);
    expect(days.length).toBeGreaterThan(0);
    await sql.raw(`DROP TABLE ${days.map((d) => `${d.e}, ${d.t}`).join(', ')}`).execute(tdb.db);
    const outcome = await taskSubmit(tdb.db, newTask({ idempotencyKey: 'k', requestHash: 'h' }));
    expect(outcome.kind).toBe('created');
    expect(await relationExists(tdb.db, `agentq.tasks_p${dayName(Date.now())}`)).toBe(true);
  });
});

describe('retention', () => {
  it('drops old finished days whole, batch-deletes where a day cannot go, never touches queued or running', async () => {
    const tdb = await databaseWithPastDays();
    const db = tdb.db;
    const now = Date.now();
    const at = (days: number, hours = 12) => now - days * DAY + (hours - 12) * 3_600_000;

    // Day -40: finished only (one with a key and a pending webhook job) → dropped whole.
    const gone = [
      await finishedTask(db, at(40), 'completed', { idempotencyKey: 'old-key', requestHash: 'h' }),
      await finishedTask(db, at(40), 'failed'),
      await finishedTask(db, at(40), 'cancelled', { webhookUrl: 'https://example.test/hook' }),
    ];
    // Day -38: finished only, its events partition already detached by a run that stopped.
    const interrupted = await finishedTask(db, at(38), 'completed');
    await sql
      .raw(`ALTER TABLE agentq.task_events DETACH PARTITION agentq.task_events_p${dayName(at(38))}`)
      .execute(db);
    // Day -35: five finished and one queued → the finished go in batches, the queued stays.
    const batchGone = [];
    for (let i = 0; i < 5; i++) batchGone.push(await finishedTask(db, at(35), 'completed'));
    const oldQueued = (await taskInsertWithJob(db, newTask({ id: idAt(at(35)) })))!;
    // Day -34: a running task and a failed one.
    const oldRunning = (await taskInsertWithJob(db, newTask({ id: idAt(at(34)) })))!;
    await taskClaim(db, { taskId: oldRunning.id, jobId: oldRunning.job_id!, workerId: 'w' });
    const oldFailed = await finishedTask(db, at(34), 'failed');
    // Either side of the horizon (now - 30 days), and recent.
    const justOlder = await finishedTask(db, now - 30 * DAY - 3_600_000, 'completed');
    const justNewer = await finishedTask(db, now - 30 * DAY + 3_600_000, 'completed');
    const recent = await finishedTask(db, now - DAY, 'completed', {
      idempotencyKey: 'new-key',
      requestHash: 'h',
    });

    const all = [...gone, interrupted, ...batchGone, oldQueued, oldRunning, oldFailed];
    const countAll = async () => {
      const { rows } = await sql<{ t: number; e: number }>`
        SELECT (SELECT count(*)::int FROM agentq.tasks) AS t,
               (SELECT count(*)::int FROM agentq.task_events) AS e`.execute(db);
      return rows[0]!;
    };

    // 0 keeps everything.
    const before = await countAll();
    const off = await runRetention({ pool: tdb.pool, retentionDays: 0, batchSize: 2 });
    expect(off).toMatchObject({ dropped: [], deletedTasks: 0, horizon: null, ran: true });
    expect(await countAll()).toEqual(before);
    expect(all.length + 3).toBe(before.t);

    const report = await runRetention({ pool: tdb.pool, retentionDays: 30, batchSize: 2 });
    expect(report.dropped).toEqual(
      expect.arrayContaining([
        `agentq.tasks_p${dayName(at(40))}`,
        `agentq.tasks_p${dayName(at(38))}`,
      ]),
    );
    expect(report.deferred).toEqual([]);
    expect(report.deletedKeys).toBe(1);
    expect(report.removedJobs).toBe(1); // the old task's webhook delivery
    for (const t of [...gone, interrupted, ...batchGone, oldFailed, justOlder])
      expect(await exists(db, t.id)).toBe(false);
    for (const p of [dayName(at(40)), dayName(at(38))]) {
      expect(await relationExists(db, `agentq.tasks_p${p}`)).toBe(false);
      expect(await relationExists(db, `agentq.task_events_p${p}`)).toBe(false);
    }
    // The days holding active tasks stay, with those tasks and their events.
    expect(await relationExists(db, `agentq.tasks_p${dayName(at(35))}`)).toBe(true);
    const { rows: kept } = await sql<{ id: string; status: string; events: number }>`
      SELECT t.id, t.status, (SELECT count(*)::int FROM agentq.task_events e WHERE e.task_id = t.id) AS events
      FROM agentq.tasks t WHERE t.id IN (${oldQueued.id}, ${oldRunning.id}) ORDER BY t.id`.execute(
      db,
    );
    expect(kept).toEqual(
      [
        { id: oldQueued.id, status: 'queued', events: 1 },
        { id: oldRunning.id, status: 'running', events: 2 },
      ].sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    for (const t of [justNewer, recent]) expect(await exists(db, t.id)).toBe(true);
    const { rows: jobs } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM graphile_worker._private_jobs
      WHERE payload->>'task_id' = ${gone[2]!.id}`.execute(db);
    expect(jobs[0]!.n).toBe(0);
    // The dropped day's key is free; the recent one still replays.
    expect(
      (await taskSubmit(db, newTask({ idempotencyKey: 'old-key', requestHash: 'h' }))).kind,
    ).toBe('created');
    expect(
      await taskSubmit(db, newTask({ idempotencyKey: 'new-key', requestHash: 'h' })),
    ).toMatchObject({ kind: 'replayed', task: { id: recent.id } });

    // A second run finds nothing more to do.
    const second = await runRetention({ pool: tdb.pool, retentionDays: 30, batchSize: 2 });
    expect(second).toMatchObject({ dropped: [], deletedTasks: 0, deletedKeys: 0 });
  });

  it('runs beside submits, claims and completions without failing them or holding them up', async () => {
    const tdb = await databaseWithPastDays();
    const db = tdb.db;
    // Three old days of finished history, made set-based through the real triggers.
    for (const days of [40, 39, 36]) {
      await sql`
        WITH ids AS (
          SELECT agentq.uuid_floor(now() - make_interval(days => ${days})) AS lo
        ), made AS (
          INSERT INTO agentq.tasks (id, type, input, config)
          SELECT (left(lo::text, 24) || lpad(to_hex(g), 12, '0'))::uuid, 'agent', '{"prompt":"p"}', '{}'
          FROM ids, generate_series(1, 200) g
          RETURNING id
        )
        SELECT count(*) FROM made`.execute(db);
    }
    await sql`UPDATE agentq.tasks SET status = 'running', claim = 1, attempts = 1 WHERE status = 'queued'`.execute(
      db,
    );
    await sql`UPDATE agentq.tasks SET status = 'completed', result = '{"answer":"a"}' WHERE status = 'running'`.execute(
      db,
    );

    const errors: unknown[] = [];
    let done = 0;
    let stop = false;
    const traffic = async () => {
      while (!stop) {
        try {
          const t = (await taskInsertWithJob(db, newTask()))!;
          const r = (await taskClaim(db, { taskId: t.id, jobId: t.job_id!, workerId: 'w' }))!;
          await appendEvent(db, { taskId: t.id, type: 'message', data: {} });
          await taskFinish(
            db,
            attemptOf(r),
            { status: 'completed', result: { answer: 'x' } },
            USAGE,
          );
          done++;
        } catch (err) {
          errors.push(err);
        }
      }
    };
    const loops = [traffic(), traffic(), traffic()];
    try {
      await waitFor(() => done >= 5, { what: 'traffic to start' });
      const atStart = done;
      const report = await runRetention({ pool: tdb.pool, retentionDays: 30, lockTimeoutMs: 2000 });
      const during = done - atStart;
      // The three days of history (and the empty days around them).
      expect(report.dropped).toEqual(
        expect.arrayContaining(
          [40, 39, 36].map((d) => `agentq.tasks_p${dayName(Date.now() - d * DAY)}`),
        ),
      );
      expect(report.deferred).toEqual([]);
      expect(during).toBeGreaterThan(0);
      await waitFor(() => done >= atStart + during + 5, { what: 'traffic to go on after the run' });
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(errors).toEqual([]);
  });

  it('is run by the worker process (its cron task), which also makes the days ahead at start', async () => {
    const tdb = await databaseWithPastDays();
    const old = await finishedTask(tdb.db, Date.now() - 40 * DAY, 'completed');
    // Remove the days ahead: the worker's start makes them again.
    const last = `agentq.tasks_p${dayName(Date.now() + 14 * DAY)}`;
    await sql
      .raw(`DROP TABLE agentq.task_events_p${dayName(Date.now() + 14 * DAY)}, ${last}`)
      .execute(tdb.db);
    const worker = await startWorkerProcess({
      DATABASE_URL: tdb.url,
      AGENTQ_DEFAULT_PROVIDER: 'offline',
      AGENTQ_RETENTION_DAYS: '30',
    });
    cleanups.push(() => worker.stop());
    expect(await relationExists(tdb.db, last)).toBe(true);
    // The hourly item is registered with graphile-worker's cron…
    await waitFor(
      async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM graphile_worker._private_known_crontabs
          WHERE identifier = 'agentq_partitions'`.execute(tdb.db);
        return rows[0]!.n === 1;
      },
      { what: 'the cron item to be registered' },
    );
    // …and its task, queued as cron would, runs in the worker.
    await sql`SELECT graphile_worker.add_job('agentq_partitions', '{}'::json)`.execute(tdb.db);
    const line = await waitFor(() => worker.logs().find((l) => l.msg === 'partition maintenance'), {
      what: 'the worker to log its partition maintenance',
    });
    expect(line).toMatchObject({
      dropped: expect.arrayContaining([
        `agentq.tasks_p${dayName(Date.now() - 40 * DAY)}`,
      ]) as unknown,
    });
    expect(await exists(tdb.db, old.id)).toBe(false);
    expect(worker.output()).not.toContain('crontab');
  });
});
