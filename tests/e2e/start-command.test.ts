// `npm start` as a new user runs it: no DATABASE_URL (embedded Postgres), and
// with DATABASE_URL set. It must serve a task end to end and stop cleanly.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/db/embedded-postgres.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { apiClient } from '../helpers/http-client.ts';
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
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
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
  return { url: `http://127.0.0.1:${port}`, output: () => out, stop };
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
