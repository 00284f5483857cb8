// Postgres restarts under a running system (its own embedded server, so the
// restart hurts no other test): the API and worker reconnect, a long-poll that
// was waiting answers correctly, a task running across the restart completes,
// and nothing accepted is lost.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../shared/db/database.ts';
import {
  freePort,
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../shared/db/embedded-postgres.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { apiClient } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { waitFor } from '../helpers/wait-for.ts';

let dir: string;
let port: number;
let pg: EmbeddedDatabase;
let fake: FakeLlmServer;
let api: AgentqProcess & { url: string };
let worker: AgentqProcess;

const startPg = () =>
  startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, persistent: true });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'agentq-restart-'));
  port = await freePort();
  pg = await startPg();
  const pool = createPool({ connectionString: pg.url, applicationName: 'agentq-test' });
  await migrateDatabase(pool);
  await pool.end();
  fake = await startFakeOpenAI({ apiKey: 'sk-test-valid' });
  const env = {
    DATABASE_URL: pg.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: fake.url,
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_HEARTBEAT_MS: '500',
  };
  [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
});

afterAll(async () => {
  await Promise.all([api?.stop('SIGKILL'), worker?.stop('SIGKILL')]);
  await fake?.close();
  await pg?.stop().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe('a Postgres restart', () => {
  it('is ridden out by the API and the worker', async () => {
    const client = apiClient(api.url);
    const slow = await client.submit({
      input: { prompt: '[delay=4000] What is 20 + 22? (across the restart)' },
    });
    await waitFor(async () => (await client.get(slow.body.id)).status === 'running', {
      what: 'the slow task to start',
    });
    await fake.waitFor((reqs) => reqs.some((r) => r.prompt.includes('(across the restart)')));
    const longPoll = client.get(slow.body.id, 40);

    await pg.stop();
    pg = await startPg();

    const polled = await longPoll; // answered, not hung, not a 500
    const slowDone =
      polled.status === 'completed' ? polled : await client.waitDone(slow.body.id, 60);
    expect(slowDone.status).toBe('completed');
    expect(slowDone.result?.answer).toBe('The answer is 42.');

    // The system works as before: new tasks are accepted and run.
    const more = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        client.submit({ input: { prompt: `What is ${i} * 3? (after restart)` } }),
      ),
    );
    expect(more.map((m) => m.status)).toEqual([201, 201, 201, 201, 201]);
    const done = await Promise.all(more.map((m) => client.waitDone(m.body.id, 60)));
    expect(done.map((t) => t.result?.answer)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `The answer is ${i * 3}.`),
    );
    expect(api.proc.exitCode).toBeNull();
    expect(worker.proc.exitCode).toBeNull();
  }, 150_000);
});
