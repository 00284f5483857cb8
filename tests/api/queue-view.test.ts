// GET /v1/stats and GET /v1/workers: the dashboard's queue view, read from the
// real tables the worker writes (heartbeats and claims made with its own queries).
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { attemptOf, taskClaim, taskFinish } from '../../shared/tasks/attempt-queries.ts';
import { workerHeartbeat } from '../../shared/workers/worker-queries.ts';

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig({ AGENTQ_WORKER_DEAD_AFTER_MS: '5000' }));
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

interface Stats {
  counts: Record<'queued' | 'running' | 'completed' | 'failed' | 'cancelled', number>;
  queued_due: number;
  oldest_queued_age_s: number | null;
  workers: number;
}

const stats = async () => {
  const res = await api.get('/v1/stats');
  expect(res.status).toBe(200);
  return (await res.json()) as Stats;
};

async function submit(body: Record<string, unknown> = {}): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt: 'queue view' }, ...body });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function claim(id: string, workerId: string) {
  const { job_id } = await tdb.db
    .selectFrom('agentq.tasks')
    .select('job_id')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  const claimed = await taskClaim(tdb.db, { taskId: id, jobId: job_id!, workerId });
  return attemptOf(claimed!);
}

const usage = { input_tokens: 1, output_tokens: 1, llm_calls: 1, tool_calls: 0 };

describe('GET /v1/stats', () => {
  it('counts every status, the due queue and its oldest wait', async () => {
    expect(await stats()).toEqual({
      counts: { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
      queued_due: 0,
      oldest_queued_age_s: null,
      workers: 0,
    });
    await submit();
    await submit({ run_at: '2999-01-01T00:00:00Z' }); // queued, not due
    const cancelled = await submit();
    expect((await api.post(`/v1/tasks/${cancelled}/cancel`, {})).status).toBe(200);
    await claim(await submit(), 'stats-worker');
    const done = await claim(await submit(), 'stats-worker');
    await taskFinish(tdb.db, done, { status: 'completed', result: { answer: 'x' } }, usage);
    const failed = await claim(await submit(), 'stats-worker');
    await taskFinish(
      tdb.db,
      failed,
      {
        status: 'failed',
        error: { code: 'provider_auth', message: 'no', retryable: false },
      },
      usage,
    );
    await workerHeartbeat(tdb.db, {
      id: 'stats-worker',
      hostname: 'h',
      pid: 1,
      version: 't',
      concurrency: 1,
    });
    // The oldest due task has waited a while.
    await sql`UPDATE agentq.tasks SET run_at = now() - interval '90 seconds'
              WHERE status = 'queued' AND run_at < '2999-01-01'`.execute(tdb.db);
    const now = await stats();
    expect(now).toMatchObject({
      counts: { queued: 2, running: 1, completed: 1, failed: 1, cancelled: 1 },
      queued_due: 1,
      workers: 1,
    });
    expect(now.oldest_queued_age_s).toBeGreaterThanOrEqual(90);
    expect(now.oldest_queued_age_s).toBeLessThan(3600);
  });
});

describe('GET /v1/workers', () => {
  it('lists workers newest first, alive or not, with what they run (at most 50 ids)', async () => {
    const info = (id: string) => ({
      id,
      hostname: `${id}.host`,
      pid: 42,
      version: '9.9',
      concurrency: 60,
    });
    await workerHeartbeat(tdb.db, info('old-worker'));
    await sql`UPDATE agentq.workers SET started_at = now() - interval '2 hours',
              last_seen_at = now() - interval '1 hour' WHERE id = 'old-worker'`.execute(tdb.db);
    await workerHeartbeat(tdb.db, info('busy-worker'));
    const batch = await api.post('/v1/tasks/batch', {
      tasks: Array.from({ length: 55 }, (_, i) => ({ input: { prompt: `busy ${i}` } })),
    });
    expect(batch.status).toBe(201);
    const ids = ((await batch.json()) as { data: Array<{ id: string }> }).data.map((t) => t.id);
    const first = await claim(ids[0]!, 'busy-worker');
    for (const id of ids.slice(1)) await claim(id, 'busy-worker');

    const res = await api.get('/v1/workers');
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as {
      data: Array<{ id: string; alive: boolean; running: number; running_task_ids: string[] }>;
    };
    const mine = data.filter((w) => ['busy-worker', 'old-worker'].includes(w.id));
    expect(mine.map((w) => w.id)).toEqual(['busy-worker', 'old-worker']);
    const [busy, old] = mine;
    expect(busy).toMatchObject({
      hostname: 'busy-worker.host',
      pid: 42,
      version: '9.9',
      concurrency: 60,
      alive: true,
      running: 55,
    });
    expect(busy!.running_task_ids).toHaveLength(50);
    expect(busy!.running_task_ids[0]).toBe(ids[0]); // the longest-running first
    expect(old).toMatchObject({ alive: false, running: 0, running_task_ids: [] });
    // A finished task leaves the list.
    await taskFinish(tdb.db, first, { status: 'completed', result: { answer: 'x' } }, usage);
    const after = (await (await api.get('/v1/workers')).json()) as typeof data extends infer T
      ? { data: T }
      : never;
    const busyAfter = after.data.find((w) => w.id === 'busy-worker')!;
    expect(busyAfter.running).toBe(54);
    expect(busyAfter.running_task_ids).not.toContain(ids[0]);
  });
});
