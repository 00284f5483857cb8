// `npm start` as a new user runs it: no DATABASE_URL (embedded Postgres), and
// with DATABASE_URL set. It must serve a task end to end and stop cleanly:
// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and
// SIGTERM to the npm process alone (as a supervisor sends it) both requeue a
// task in flight, deregister the worker, stop the embedded Postgres last, and
// leave no process behind.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres } from '../../shared/db/embedded-postgres.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { apiClient } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { duplicateKeys } from '../helpers/log-lines.ts';
import { waitFor } from '../helpers/wait-for.ts';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function npmStart(env: Record<string, string>) {
  const port = await freePort();
  const base = { ...process.env };
  delete base.DATABASE_URL;
  const proc = spawn('npm', ['start'], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: { ...base, PORT: String(port), LOG_LEVEL: 'warn', AGENTQ_DB_POOL_MAX: '4', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so the signal reaches node under npm
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let exitedAt = 0;
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      exitedAt = Date.now();
      resolve(code);
    }),
  );
  // Ctrl-C in a terminal: SIGINT to the whole foreground process group.
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(-proc.pid!, 'SIGINT');
      } catch {
        // already gone
      }
    }
    await exited;
  };
  cleanups.push(async () => void (await stop()));
  await waitFor(() => out.includes('Try it:'), {
    timeoutMs: 60_000,
    what: `npm start to print its banner\n${out}`,
  });
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop,
    npmPid: proc.pid!,
    exited,
    exitedAt: () => exitedAt,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => ({ line: l, json: JSON.parse(l) as Record<string, unknown> })),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runOneTask(url: string) {
  const client = apiClient(url);
  const { status, body } = await client.submit({
    input: { prompt: 'What is 17 * 23? Use the calculator.' },
  });
  expect(status).toBe(201);
  const done = await client.waitDone(body.id, 30);
  expect(done.status).toBe('completed');
  expect(done.result?.answer).toContain('391');
  expect(done.result?.answer).toContain('offline demo provider');
}

describe('npm start', () => {
  it('with no DATABASE_URL: starts an embedded Postgres, serves a task, prints how to try it', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'agentq-start-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const app = await npmStart({ AGENTQ_DATA_DIR: dataDir });
    expect(app.output()).toContain(`agentq is running at ${app.url}`);
    expect(app.output()).toContain('curl -s -X POST');
    expect(app.output()).toContain('offline demo');
    expect(app.output()).toContain(`dashboard ${app.url}/`);
    // It opens onto the dashboard: the page shell and the script it loads.
    const page = await fetch(`${app.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    const script = /<script[^>]+src="([^"]+)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect((await fetch(new URL(script!, app.url))).status).toBe(200);
    await runOneTask(app.url);
    await app.stop();
    // Everything it started is gone: the API port and the embedded Postgres.
    await waitFor(
      async () =>
        await fetch(`${app.url}/healthz`).then(
          () => false,
          () => true,
        ),
      { what: 'the API to stop' },
    );
    await waitFor(() => !existsSync(path.join(dataDir, 'pg', 'postmaster.pid')), {
      what: 'the embedded Postgres to stop',
    });
    expect(app.output()).not.toMatch(/"level":60|Uncaught|unhandled/i);
  });

  it('with DATABASE_URL set: uses that database', async () => {
    const tdb: TestDatabase = await createTestDatabase();
    cleanups.push(() => tdb.drop());
    const app = await npmStart({ DATABASE_URL: tdb.url });
    await runOneTask(app.url);
    const rows = await tdb.db.selectFrom('agentq.tasks').select('status').execute();
    expect(rows).toEqual([{ status: 'completed' }]);
    // One registry for the process: the API's /metrics shows the worker's side too.
    // (The worker counts the outcome just after writing it: wait for it.)
    const metrics = await waitFor(
      async () => {
        const text = await (await fetch(`${app.url}/metrics`)).text();
        return text.includes('agentq_tasks_finished_total{status="completed",error_code="none"} 1')
          ? text
          : undefined;
      },
      { what: 'the completed task in /metrics' },
    );
    expect(metrics).toContain('agentq_tasks_submitted_total{type="agent"} 1');
    expect(metrics).toMatch(/^agentq_worker_concurrency\{worker_id="pool-[^"]+"\} 10$/m);
    expect(metrics).toMatch(/^process_cpu_user_seconds_total \d/m);
    await app.stop();
    await waitFor(
      async () =>
        await fetch(`${app.url}/healthz`).then(
          () => false,
          () => true,
        ),
      { what: 'the API to stop' },
    );
    await waitFor(
      async () => (await tdb.db.selectFrom('agentq.workers').select('id').execute()).length === 0,
      {
        what: 'the worker to deregister',
      },
    );
  });
});

describe('stopping npm start with a task in flight', () => {
  const GRACE_MS = 2000;

  it.each([
    ['Ctrl-C: SIGINT to the whole process group', 'group', 'SIGINT'],
    ['a supervisor: SIGTERM to the npm process only', 'npm', 'SIGTERM'],
  ] as const)('%s', async (_what, target, signal) => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'agentq-stop-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    // A provider that never answers: the task stays running until the worker aborts it.
    const fake = await startFakeOpenAI();
    cleanups.push(() => fake.close());
    fake.setHandler(() => ({ hang: true }));
    // OPENAI_BASE_URL alone (no key, no AGENTQ_DEFAULT_PROVIDER) selects openai.
    const app = await npmStart({
      AGENTQ_DATA_DIR: dataDir,
      OPENAI_BASE_URL: fake.url,
      AGENTQ_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      LOG_LEVEL: 'info',
    });
    expect(app.output()).toContain(`provider  openai, model gpt-4o-mini, at ${fake.url}`);
    expect(app.output()).not.toContain('API_KEY');
    const postgresPid = Number(
      (await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    const nodePid = Number(app.logs()[0]!.json.pid);
    // Should this fail half-way, leave nothing running (runs before the rm above).
    cleanups.push(async () => {
      if (isAlive(nodePid)) process.kill(nodePid, 'SIGKILL');
      if (isAlive(postgresPid)) process.kill(postgresPid, 'SIGINT');
      await waitFor(() => !isAlive(postgresPid), { what: 'a leftover Postgres to stop' });
    });
    expect(isAlive(postgresPid) && isAlive(nodePid)).toBe(true);

    const { status, body } = await apiClient(app.url).submit({ input: { prompt: 'hello' } });
    expect(status).toBe(201);
    expect(body.config.provider).toBe('openai');
    await fake.waitFor((requests) => requests.length === 1, 30_000);

    const signalledAt = Date.now();
    process.kill(target === 'group' ? -app.npmPid : app.npmPid, signal);
    expect(await app.exited).toBe(0);
    // The worker gives the task GRACE_MS, then requeues it; the rest (API,
    // pool, Postgres) takes seconds, not the 29 s of a Postgres stopped first.
    expect(app.exitedAt() - signalledAt).toBeLessThan(GRACE_MS + 8000);
    expect(fake.requests[0]!.aborted).toBe(true);

    // Nothing left running: not node (under npm and sh), not Postgres.
    await waitFor(() => !isAlive(nodePid) && !isAlive(postgresPid), {
      timeoutMs: 5000,
      what: 'node and Postgres to be gone',
    });
    expect(() => process.kill(-app.npmPid, 0)).toThrow(); // the whole process group is gone
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const logs = app.logs();
    expect(logs.filter((l) => Number(l.json.level) >= 50).map((l) => l.line)).toEqual([]);
    expect(logs.filter((l) => duplicateKeys(l.line).length > 0).map((l) => l.line)).toEqual([]);
    expect(app.output()).not.toContain('crontab');

    // The database, opened again: the task is back in the queue with its
    // attempt not counted, and the worker deregistered.
    const db = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), persistent: true });
    const client = new pg.Client({ connectionString: db.url });
    try {
      await client.connect();
      const task = await client.query(`SELECT status, attempts FROM agentq.tasks WHERE id = $1`, [
        body.id,
      ]);
      expect(task.rows, app.output()).toEqual([{ status: 'queued', attempts: 0 }]);
      const events = await client.query<{ type: string; data: Record<string, unknown> }>(
        `SELECT type, data FROM agentq.task_events WHERE task_id = $1 ORDER BY seq`,
        [body.id],
      );
      expect(events.rows.map((e) => e.type)).not.toContain('recovered');
      expect(events.rows.filter((e) => e.type === 'status').map((e) => e.data.to)).toEqual([
        'queued',
        'running',
        'queued',
      ]);
      expect((await client.query(`SELECT id FROM agentq.workers`)).rows).toEqual([]);
    } finally {
      await client.end();
      await db.stop();
    }
  });
});

describe('configuration errors', () => {
  it.each([
    [
      'api/main.ts',
      { DATABASE_URL: 'mysql://x', PORT: '8080' },
      'agentq: invalid DATABASE_URL: must start with postgres://',
    ],
    [
      'worker/main.ts',
      { DATABASE_URL: 'postgres://x/y', AGENTQ_WORKER_CONCURRENCY: 'lots' },
      'agentq: invalid AGENTQ_WORKER_CONCURRENCY: must be a whole number from 1 to 1000',
    ],
    [
      'api/main.ts',
      { DATABASE_URL: 'postgres://x/y', HOST: '0.0.0.0' },
      'agentq: invalid HOST: 0.0.0.0 would expose an API without authentication; set AGENTQ_API_TOKENS',
    ],
    [
      'api/main.ts',
      { DATABASE_URL: 'postgres://x/y', HOST: '0.0.0.0', AGENTQ_API_TOKENS: 'change-me-please' },
      'agentq: invalid AGENTQ_API_TOKENS: "change-me-please" is a placeholder, not a secret; set a random token (e.g. openssl rand -hex 32)',
    ],
    [
      'worker/main.ts',
      { DATABASE_URL: 'postgres://x/y', AGENTQ_DEFAULT_PROVIDER: 'anthropic' },
      'agentq: invalid AGENTQ_DEFAULT_PROVIDER: must be one of openai, google, offline',
    ],
  ])('%s stops at start with one line naming the variable (%j)', async (entry, env, line) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    expect(code).toBe(1);
    expect(err.trim()).toBe(line);
  });
});
