// The connection budget: each process states it at start, and a process that
// cannot get a connection (here: its role's CONNECTION LIMIT is 0, so Postgres
// answers 53300 "too many connections") says so in one line per try naming
// the URL (password masked) and its budget, backs off, and recovers on its own
// once connections are allowed again.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { launch, type AgentqProcess } from '../helpers/processes.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const ROLE = `agentq_limited_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'limited-pw-9f3';

let tdb: TestDatabase;
let admin: pg.Client;
const processes: AgentqProcess[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  admin = new pg.Client({ connectionString: inject('adminUrl') });
  await admin.connect();
  // Not a superuser (superusers ignore connection limits), but a member of the
  // owner of agentq's tables, so it may use them.
  await admin.query(
    `CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}' CONNECTION LIMIT 0 IN ROLE ${new URL(tdb.url).username || 'postgres'}`,
  );
});

afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL');
  await tdb?.drop();
  await admin?.query(`DROP ROLE IF EXISTS ${ROLE}`);
  await admin?.end();
});

const failures = (p: AgentqProcess) =>
  p.logs().filter((l) => String(l.msg).startsWith('cannot get a database connection'));

describe('a process that cannot get a connection', { timeout: 180_000 }, () => {
  it('says why with the URL and its budget, backs off, and recovers when the limit is raised', async () => {
    const url = new URL(tdb.url);
    url.username = ROLE;
    url.password = PASSWORD;
    const env = {
      DATABASE_URL: url.toString(),
      AGENTQ_DEFAULT_PROVIDER: 'offline',
      AGENTQ_DB_POOL_MAX: '3',
    };
    const port = await freePort();
    const api = launch('api/main.ts', { ...env, PORT: String(port) });
    const worker = launch('worker/main.ts', env);
    processes.push(api, worker);

    expect(
      await waitFor(() => api.logs().find((l) => String(l.msg).startsWith('connection budget:')), {
        timeoutMs: 60_000, // a cold tsx start on a loaded machine
        what: 'the api budget line',
      }),
    ).toMatchObject({ msg: 'connection budget: pool 3 + listener 1 = 4 (all on DATABASE_URL)' });
    expect(
      await waitFor(
        () => worker.logs().find((l) => String(l.msg).startsWith('connection budget:')),
        { timeoutMs: 60_000, what: 'the worker budget line' },
      ),
    ).toMatchObject({
      msg: 'connection budget: pool (tasks and graphile-worker) 3 + recovery 2 + heartbeat 1 + listener 1 = 7 (all on DATABASE_URL)',
    });

    for (const p of [api, worker]) {
      await waitFor(() => failures(p).length >= 3, {
        timeoutMs: 30_000,
        what: 'three failed tries',
      });
      const [first, second, third] = failures(p);
      expect(first).toMatchObject({ code: '53300', attempt: 1 });
      expect(String(first!.msg)).toContain(`${ROLE}:***@`);
      expect(String(first!.msg)).toContain('out of connections');
      expect(String(first!.budget)).toMatch(/= \d+/);
      expect(JSON.stringify(p.logs())).not.toContain(PASSWORD);
      // Backoff, not a spin: each wait is longer than the one before.
      expect(Number(second!.retryInMs)).toBeGreaterThan(Number(first!.retryInMs));
      expect(Number(third!.retryInMs)).toBeGreaterThan(Number(second!.retryInMs));
    }

    await admin.query(`ALTER ROLE ${ROLE} CONNECTION LIMIT -1`);
    await waitFor(
      async () =>
        (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200,
      { timeoutMs: 30_000, what: 'the api to recover' },
    );
    await waitFor(() => worker.logs().some((l) => l.msg === 'worker started'), {
      timeoutMs: 30_000,
      what: 'the worker to recover',
    });
    for (const p of [api, worker])
      expect(p.logs().some((l) => l.msg === 'database connection made')).toBe(true);
    // And it works: a task submitted now completes.
    const res = await fetch(`http://127.0.0.1:${port}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: 'What is 2 + 2?' } }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const done = (await (
      await fetch(`http://127.0.0.1:${port}/v1/tasks/${id}?wait=30`)
    ).json()) as { status: string };
    expect(done.status).toBe('completed');
    expect(await api.stop()).toBe(0);
    expect(await worker.stop()).toBe(0);
  });
});
