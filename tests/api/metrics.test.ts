// GET /metrics on the API through app.request(): the text parses strictly,
// submits and cancels are counted, requests are labelled by route pattern,
// the queue gauges match SQL counts, concurrent scrapes share one query, auth
// follows /v1 unless AGENTQ_METRICS_PUBLIC=true, and no task id ever appears.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi } from '../helpers/api-harness.ts';
import { parsePromText } from '../helpers/prom-text.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

const TOKEN = 'metrics-test-token-0123456789';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let tdb: TestDatabase;
let api: Awaited<ReturnType<typeof startTestApi>>;
const ids: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  api = await startTestApi(tdb, testConfig(), { metricsCacheMs: 0 });
});
afterAll(async () => {
  await api?.stop();
  await tdb?.drop();
});

async function scrape(target = api, headers?: Record<string, string>) {
  const res = await target.get('/metrics', headers);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  return { text, metrics: parsePromText(text) };
}

async function submit(body: Record<string, unknown>, headers?: Record<string, string>) {
  const res = await api.post('/v1/tasks', body, headers);
  const task = (await res.json()) as { id: string };
  ids.push(task.id);
  return { res, task };
}

describe('GET /metrics on the API', () => {
  it('counts new tasks by type, each task of a batch, and no idempotent replay', async () => {
    const before = (await scrape()).metrics.sum('agentq_tasks_submitted_total', { type: 'agent' });
    await submit({ input: { prompt: 'one' } });
    const first = await submit({ input: { prompt: 'two' }, idempotency_key: 'metrics-k1' });
    const replay = await submit({ input: { prompt: 'two' }, idempotency_key: 'metrics-k1' });
    expect([first.res.status, replay.res.status]).toEqual([201, 200]);
    const batch = await api.post('/v1/tasks/batch', {
      tasks: [
        { input: { prompt: 'b1' } },
        { input: { prompt: 'b2' } },
        { input: { prompt: 'two' }, idempotency_key: 'metrics-k1' }, // a replay
      ],
    });
    expect(batch.status).toBe(201);
    ids.push(...((await batch.json()) as { data: { id: string }[] }).data.map((t) => t.id));

    const { metrics } = await scrape();
    expect(metrics.types.get('agentq_tasks_submitted_total')).toBe('counter');
    expect(metrics.sum('agentq_tasks_submitted_total', { type: 'agent' }) - before).toBe(4);
  });

  it('labels requests by route pattern, never by path', async () => {
    const { task } = await submit({ input: { prompt: 'read me' } });
    await api.get(`/v1/tasks/${task.id}`);
    await api.get(`/v1/tasks/${task.id}`);
    await api.get(`/no/such/${task.id}`);
    const { metrics } = await scrape();
    expect(
      metrics.sum('agentq_http_requests_total', {
        method: 'GET',
        route: '/v1/tasks/:id',
        status: '200',
      }),
    ).toBe(2);
    expect(
      metrics.sum('agentq_http_requests_total', { route: '/v1/tasks', status: '201' }),
    ).toBeGreaterThanOrEqual(1);
    expect(metrics.sum('agentq_http_requests_total', { route: 'unmatched', status: '404' })).toBe(
      1,
    );
  });

  it('counts a queued task cancelled by the API as finished', async () => {
    const { task } = await submit({ input: { prompt: 'cancel me' } });
    const label = { status: 'cancelled', error_code: 'cancelled' };
    const before = (await scrape()).metrics.sum('agentq_tasks_finished_total', label);
    expect((await api.post(`/v1/tasks/${task.id}/cancel`, {})).status).toBe(200);
    // Cancelling again changes nothing and counts nothing.
    expect((await api.post(`/v1/tasks/${task.id}/cancel`, {})).status).toBe(200);
    const after = (await scrape()).metrics.sum('agentq_tasks_finished_total', label);
    expect(after - before).toBe(1);
  });

  it('reports queue depth and oldest age by status, matching the database', async () => {
    const { task: running } = await submit({ input: { prompt: 'running' } });
    const { task: stale } = await submit({ input: { prompt: 'waiting long' } });
    const { task: later } = await submit({
      input: { prompt: 'scheduled' },
      run_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    await sql`UPDATE agentq.tasks SET status = 'running' WHERE id = ${running.id}`.execute(tdb.db);
    await sql`UPDATE agentq.tasks SET run_at = now() - interval '90 seconds' WHERE id = ${stale.id}`.execute(
      tdb.db,
    );
    await sql`UPDATE agentq.tasks SET created_at = now() - interval '2 hours' WHERE id = ${later.id}`.execute(
      tdb.db,
    );

    const { metrics } = await scrape();
    const { rows } = await sql<{ status: string; n: number; oldest: number | null }>`
      SELECT status, count(*) AS n,
             extract(epoch FROM now() - min(run_at) FILTER (WHERE run_at <= now()))::float8 AS oldest
      FROM agentq.tasks GROUP BY status`.execute(tdb.db);
    const count = (status: string) => rows.find((r) => r.status === status)?.n ?? 0;
    expect(metrics.types.get('agentq_queue_depth')).toBe('gauge');
    for (const status of ['queued', 'running']) {
      expect(metrics.find('agentq_queue_depth', { status })[0]?.value).toBe(count(status));
    }
    expect(count('queued')).toBeGreaterThan(3);
    expect(count('running')).toBe(1);
    // Finished tasks are not read at scrape time (the counters say it).
    expect(metrics.find('agentq_queue_depth', { status: 'cancelled' })).toEqual([]);

    // The oldest due task waited about 90 s; the scheduled one is not waiting yet.
    const oldest = metrics.find('agentq_queue_oldest_age_seconds', { status: 'queued' })[0]!.value;
    const sqlOldest = rows.find((r) => r.status === 'queued')!.oldest!;
    expect(oldest).toBeGreaterThanOrEqual(90);
    expect(oldest).toBeLessThan(3600);
    expect(Math.abs(oldest - sqlOldest)).toBeLessThan(60);
    expect(
      metrics.find('agentq_queue_oldest_age_seconds', { status: 'running' })[0]!.value,
    ).toBeGreaterThanOrEqual(0);
  });

  it('serves concurrent scrapes from one database read', async () => {
    const cached = await startTestApi(tdb, testConfig(), { metricsCacheMs: 60_000 });
    try {
      let acquired = 0;
      const onAcquire = () => acquired++;
      tdb.pool.on('acquire', onAcquire);
      try {
        const results = await Promise.all(Array.from({ length: 5 }, () => scrape(cached)));
        await scrape(cached);
        expect(acquired).toBe(1);
        for (const { metrics } of results)
          expect(metrics.find('agentq_queue_depth', { status: 'queued' })).toHaveLength(1);
      } finally {
        tdb.pool.off('acquire', onAcquire);
      }
    } finally {
      await cached.stop();
    }
  });

  it('never shows a task id, and parses as Prometheus text', async () => {
    const { text, metrics } = await scrape();
    expect(ids.length).toBeGreaterThan(5);
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toMatch(UUID);
    for (const s of metrics.samples) {
      expect(s.name).toMatch(/^(agentq_|process_|nodejs_)/);
      for (const value of Object.values(s.labels)) expect(value).not.toMatch(UUID);
    }
    // Every agentq counter ends in _total.
    for (const [name, type] of metrics.types) {
      if (name.startsWith('agentq_') && type === 'counter') expect(name).toMatch(/_total$/);
    }
  });
});

describe('/metrics auth', () => {
  it('needs the /v1 bearer token when tokens are set', async () => {
    const closed = await startTestApi(tdb, testConfig({ AGENTQ_API_TOKENS: TOKEN }));
    try {
      const refused = await closed.get('/metrics');
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        'unauthorized',
      );
      expect(
        (await closed.get('/metrics', { authorization: 'Bearer wrong-token-123' })).status,
      ).toBe(401);
      const { metrics } = await scrape(closed, { authorization: `Bearer ${TOKEN}` });
      // The refusals were counted under their route.
      expect(metrics.sum('agentq_http_requests_total', { route: '/metrics', status: '401' })).toBe(
        2,
      );
    } finally {
      await closed.stop();
    }
  });

  it('answers without a token when AGENTQ_METRICS_PUBLIC=true; /v1 still needs one', async () => {
    const open = await startTestApi(
      tdb,
      testConfig({ AGENTQ_API_TOKENS: TOKEN, AGENTQ_METRICS_PUBLIC: 'true' }),
    );
    try {
      await scrape(open);
      expect((await open.get('/v1/tasks')).status).toBe(401);
    } finally {
      await open.stop();
    }
  });

  it('an open API (no tokens) serves it to loopback Hosts only, like /v1', async () => {
    const res = await api.app.request('http://attacker.example/metrics');
    expect(res.status).toBe(403);
  });
});
