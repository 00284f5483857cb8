// Through a real PgBouncer in transaction mode, as on managed Postgres: the
// real API and worker processes run their queries through the pooler
// (DATABASE_URL) and LISTEN on a direct URL (AGENTQ_DIRECT_DATABASE_URL);
// submit, long-poll, stream, cancel and a killed worker's recovery all work.
// Then with no direct URL at all: LISTEN is found deaf, both processes say
// they poll instead, and tasks still complete and cancel.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { apiClient } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import {
  pgbouncerOrSkip,
  pgbouncerVersion,
  startPgBouncer,
  type RunningPgBouncer,
} from '../helpers/pgbouncer.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const binary = pgbouncerOrSkip();

let tdb: TestDatabase;
let fake: FakeLlmServer;
let bouncer: RunningPgBouncer;
const running: AgentqProcess[] = [];

beforeAll(async () => {
  if (!binary) return;
  console.log(`[agentq tests] PgBouncer ${pgbouncerVersion(binary)} in transaction mode`);
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  bouncer = await startPgBouncer(tdb.url, { poolSize: 6, binary });
});

afterAll(async () => {
  await Promise.all(running.map((p) => p.stop('SIGKILL')));
  await bouncer?.stop();
  await fake?.close();
  await tdb?.drop();
});

function envFor(urls: Record<string, string>): Record<string, string> {
  return {
    ...urls,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: fake.url,
    AGENTQ_HEARTBEAT_MS: '300',
    AGENTQ_WORKER_DEAD_AFTER_MS: '2000',
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_SHUTDOWN_GRACE_MS: '1000',
  };
}

async function api(env: Record<string, string>) {
  const p = await startApiProcess(env);
  running.push(p);
  return p;
}

async function worker(env: Record<string, string>) {
  const p = await startWorkerProcess(env);
  running.push(p);
  return p;
}

async function runningOn(taskId: string): Promise<string> {
  return waitFor(
    async () => {
      const row = await tdb.db
        .selectFrom('agentq.tasks')
        .select(['status', 'worker_id'])
        .where('id', '=', taskId)
        .executeTakeFirst();
      return row?.status === 'running' ? (row.worker_id ?? undefined) : undefined;
    },
    { what: `task ${taskId} to be running` },
  );
}

/** The event types an SSE stream of the task sends, read until the server ends it. */
async function streamedTypes(baseUrl: string, id: string): Promise<string[]> {
  const res = await fetch(`${baseUrl}/v1/tasks/${id}/events`, {
    headers: { accept: 'text/event-stream' },
    signal: AbortSignal.timeout(30_000),
  });
  expect(res.status).toBe(200);
  const text = await res.text(); // the stream ends once the task is finished and sent
  return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]!);
}

async function completedEvents(taskId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM agentq.task_events
    WHERE task_id = ${taskId} AND type = 'status' AND data->>'to' = 'completed'`.execute(tdb.db);
  return rows[0]!.n;
}

/** Transactions PgBouncer ran for the test database (its admin console's SHOW STATS). */
async function pooledTransactions(): Promise<number> {
  const url = new URL(bouncer.url);
  url.pathname = '/pgbouncer';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ database: string; total_xact_count: string }>(
      'SHOW STATS',
    );
    return Number(rows.find((r) => r.database === tdb.name)?.total_xact_count ?? 0);
  } finally {
    await admin.end();
  }
}

const logged = (p: AgentqProcess, text: string) =>
  p.logs().filter((l) => String(l.msg).includes(text));

describe.skipIf(!binary)(
  'pooled DATABASE_URL with a direct URL for LISTEN',
  { timeout: 180_000 },
  () => {
    let env: Record<string, string>;
    let a: AgentqProcess & { url: string };
    let client: ReturnType<typeof apiClient>;
    beforeAll(async () => {
      env = {
        ...envFor({ DATABASE_URL: bouncer.url, AGENTQ_DIRECT_DATABASE_URL: tdb.url }),
        // A minute: a new job is found at once only if the jobs:insert NOTIFY,
        // heard on the direct URL, nudges graphile-worker (its own LISTEN is deaf here).
        AGENTQ_POLL_INTERVAL_MS: '60000',
      };
      a = await api(env);
      client = apiClient(a.url);
    }, 120_000);

    it('submits, long-polls, streams and lists through the pooler; LISTEN stays on', async () => {
      const w = await worker(env);
      const before = await pooledTransactions();
      const { status, body } = await client.submit({ input: { prompt: 'What is 3 + 4?' } });
      expect(status).toBe(201);
      const done = await client.waitDone(body.id);
      expect(done.status).toBe('completed');
      expect(done.result?.answer).toBe('The answer is 7.');
      const types = await streamedTypes(a.url, body.id);
      expect(types[0]).toBe('status');
      expect(types.at(-1)).toBe('status');
      expect(types).toContain('answer');
      const list = (await (await fetch(`${a.url}/v1/tasks?limit=5`)).json()) as {
        data: Array<{ id: string }>;
      };
      expect(list.data.map((t) => t.id)).toContain(body.id);
      expect(await completedEvents(body.id)).toBe(1);
      // Many at once: graphile-worker's statements meet many server connections
      // (with its named prepared statements on, they fail on the ones that never saw them).
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          client.submit({ input: { prompt: `What is ${i} + 1?` } }),
        ),
      );
      for (const s of many) expect((await client.waitDone(s.body.id)).status).toBe('completed');
      for (const s of many) expect(await completedEvents(s.body.id)).toBe(1);
      expect(w.logs().filter((l) => /prepared statement/i.test(JSON.stringify(l)))).toEqual([]);
      // The queries went through PgBouncer…
      expect(await pooledTransactions()).toBeGreaterThan(before);
      // …and nobody fell back to polling: the direct URL gave both a session.
      expect(logged(a, 'no session connection')).toEqual([]);
      expect(logged(w, 'no session connection')).toEqual([]);
      const started = w.logs().find((l) => l.msg === 'worker started');
      expect(started).toMatchObject({ changes: 'LISTEN', preparedStatements: false });
      const budget = w.logs().find((l) => String(l.msg).startsWith('connection budget:'));
      expect(budget?.msg).toMatch(/= \d+ \(\d+ on DATABASE_URL, 1 on AGENTQ_DIRECT_DATABASE_URL\)/);
      await w.stop();
    });

    it('cancels a running task', async () => {
      const w = await worker(env);
      const { body } = await client.submit({
        input: { prompt: '[hang] Think forever. (pb-cancel)' },
      });
      await runningOn(body.id);
      await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(pb-cancel)')));
      expect((await client.cancel(body.id)).status).toBe(202);
      const done = await client.waitDone(body.id, 20);
      expect(done.status).toBe('cancelled');
      await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(pb-cancel)') && r.aborted));
      await w.stop();
    });

    it('finishes a task elsewhere after its worker is SIGKILLed mid-task', async () => {
      const first = await worker(env);
      const { body } = await client.submit({
        input: { prompt: '[delay=4000] Say hello. (pb-sigkill)' },
      });
      expect(await runningOn(body.id)).toBe(first.id);
      await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(pb-sigkill)')));
      await first.stop('SIGKILL');
      const second = await worker(env);
      const done = await client.waitDone(body.id, 60);
      expect(done.status).toBe('completed');
      expect(done.attempts).toBe(2);
      expect((await client.events(body.id)).map((e) => e.type)).toContain('recovered');
      expect(await completedEvents(body.id)).toBe(1);
      await second.stop();
    });

    it('migrates over the direct URL (the migration lock is a session lock)', async () => {
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate.ts'], {
        env: { ...process.env, ...env, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise((r) => child.once('exit', r));
      expect(code, out).toBe(0);
      expect(out).toContain('schema already current');
    });

    afterAll(async () => {
      await a?.stop();
    });
  },
);

describe.skipIf(!binary)(
  'everything through the pooler (no direct URL)',
  { timeout: 180_000 },
  () => {
    it('falls back to polling, says so once, and still completes and cancels', async () => {
      const env = envFor({ DATABASE_URL: bouncer.url });
      const [a, w] = await Promise.all([api(env), worker(env)]);
      const client = apiClient(a.url);
      // Each process found LISTEN deaf through the pooler and said so in one line.
      for (const p of [a, w]) {
        await waitFor(() => logged(p, 'no session connection for LISTEN').length === 1, {
          what: 'the polling fallback to be logged',
        });
        expect(logged(p, 'no session connection for LISTEN')[0]!.msg).toContain(
          'polling every 200 ms',
        );
      }
      expect(w.logs().find((l) => l.msg === 'worker started')).toMatchObject({
        changes: 'polling every 200 ms',
        preparedStatements: false,
      });

      const { body } = await client.submit({ input: { prompt: 'What is 3 + 4?' } });
      const done = await client.waitDone(body.id);
      expect(done.status).toBe('completed');
      const types = await streamedTypes(a.url, body.id);
      expect(types).toContain('answer');
      expect(await completedEvents(body.id)).toBe(1);

      // Only polling can tell the worker of this cancel: the model call never returns.
      const hung = await client.submit({ input: { prompt: '[hang] Think forever. (pb-poll)' } });
      await runningOn(hung.body.id);
      await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(pb-poll)')));
      expect((await client.cancel(hung.body.id)).status).toBe(202);
      expect((await client.waitDone(hung.body.id, 20)).status).toBe('cancelled');
      // Still one line each: the fallback is said once, not per retry.
      for (const p of [a, w]) expect(logged(p, 'no session connection for LISTEN')).toHaveLength(1);
      await Promise.all([a.stop(), w.stop()]);
    });
  },
);
