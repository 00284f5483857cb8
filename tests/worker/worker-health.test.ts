// The worker's probes on its metrics port, for orchestrators: /healthz is 200
// while the process runs; /readyz is 200 only when the worker can take tasks
// (database answering, migrations current, registered by its first heartbeat,
// graphile-worker running), else 503 not_ready with a reason and no secret.
// A worker in-process against its own test database; the database is made
// unreachable for real (connections refused and cut), then given back.
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const TOKEN = 'worker-health-token-0123456789';
let tdb: TestDatabase;
let admin: pg.Client;
let worker: RunningWorker | undefined;
let base: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
});

afterAll(async () => {
  await admin?.query(`ALTER DATABASE ${tdb.name} WITH ALLOW_CONNECTIONS true`).catch(() => {});
  await worker?.stop();
  await admin?.end();
  await tdb?.drop();
});

interface ProbeBody {
  status?: string;
  error: { code: string; message: string; details: { reason: string } };
}

async function probe(path: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as ProbeBody) : null };
}

describe('worker /healthz and /readyz', () => {
  it('answers alive but not ready until the first heartbeat registered the worker, then ready', async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // Hold the workers table, so the first heartbeat (the registration) waits.
    const holder = await tdb.pool.connect();
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE agentq.workers IN ACCESS EXCLUSIVE MODE');
    const starting = startWorker({
      config: testConfig({
        AGENTQ_API_TOKENS: TOKEN,
        AGENTQ_METRICS_PORT: String(port),
        AGENTQ_POLL_INTERVAL_MS: '200',
      }),
      pool: tdb.pool,
      connectionString: tdb.url,
      logger: pino({ level: 'silent' }),
    });
    try {
      const early = await waitFor(() => probe('/readyz').catch(() => undefined), {
        what: 'the probe listener',
      });
      expect(early.status).toBe(503);
      expect(early.body).toEqual({
        error: {
          code: 'not_ready',
          message: expect.stringContaining('first heartbeat'),
          details: { reason: 'starting' },
        },
      });
      expect((await probe('/healthz')).status).toBe(200);
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    worker = await starting;
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ready' } });
    expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('needs no token (unlike /metrics) and answers GET and HEAD only', async () => {
    expect((await probe('/metrics')).status).toBe(401);
    expect((await probe('/readyz', { method: 'HEAD' })).status).toBe(200);
    const post = await probe('/readyz', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.body?.error.code).toBe('method_not_allowed');
  });

  it('is not ready while a migration is pending, and ready once it is applied', async () => {
    const { rows } = await tdb.pool.query<{ name: string; timestamp: Date }>(
      `DELETE FROM agentq.kysely_migration
        WHERE name = (SELECT max(name) FROM agentq.kysely_migration) RETURNING name, timestamp`,
    );
    const removed = rows[0]!;
    try {
      const r = await probe('/readyz');
      expect(r.status).toBe(503);
      expect(r.body?.error).toMatchObject({
        code: 'not_ready',
        details: { reason: 'migrations_pending', pending_migrations: [removed.name] },
      });
    } finally {
      await tdb.pool.query(
        'INSERT INTO agentq.kysely_migration (name, timestamp) VALUES ($1, $2)',
        [removed.name, removed.timestamp],
      );
    }
    expect((await probe('/readyz')).status).toBe(200);
  });

  it('is 503 while the database refuses connections, without naming it, and ready again after', async () => {
    await admin.query(`ALTER DATABASE ${tdb.name} WITH ALLOW_CONNECTIONS false`);
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [
      tdb.name,
    ]);
    try {
      const down = await waitFor(
        async () => {
          const r = await probe('/readyz');
          return r.status === 503 ? r : undefined;
        },
        { what: '/readyz to answer 503' },
      );
      expect(down.body?.error).toMatchObject({
        code: 'not_ready',
        details: { reason: 'database_unavailable' },
      });
      const text = JSON.stringify(down.body);
      const url = new URL(tdb.url);
      expect(text).not.toContain(tdb.name);
      expect(text).not.toContain(url.port);
      // Alive all the same: a liveness probe must not restart it for the database's outage.
      expect((await probe('/healthz')).status).toBe(200);
    } finally {
      await admin.query(`ALTER DATABASE ${tdb.name} WITH ALLOW_CONNECTIONS true`);
    }
    await waitFor(async () => (await probe('/readyz')).status === 200, {
      timeoutMs: 30_000,
      what: '/readyz to be ready again',
    });
  });

  it('is not ready once stopping, and gone after', async () => {
    const stopped = worker!.stop();
    const r = await probe('/readyz').catch(() => undefined);
    if (r) expect(r.body?.error.details.reason).toBe('shutting_down');
    await stopped;
    worker = undefined;
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
