// Item 7 (API part): when the database is gone the API says so without
// telling what it is: /v1 routes answer 503 database_unavailable with
// Retry-After, and /readyz a generic reason; the details go to the log only.
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app.ts';
import { createDb, createPool } from '../../shared/db/database.ts';
import { NotificationListener } from '../../shared/db/notification-listener.ts';
import { errorOf } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** The app over a pool to `connectionString`, logging into `logged`. */
function appOver(connectionString: string, logged: string[]) {
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(line) });
  const pool = createPool({ connectionString, applicationName: 'agentq-test-gone' });
  const shutdown = new AbortController();
  const app = createApp({
    db: createDb(pool),
    pool,
    config: testConfig(),
    logger,
    // Never started: no database to LISTEN on either.
    listener: new NotificationListener({
      connectionString,
      channels: ['agentq_task'],
      logger,
      applicationName: 'agentq-test-gone-listen',
    }),
    shutdownSignal: shutdown.signal,
  });
  return { app, close: () => pool.end() };
}

const ID = '0190a0a0-0000-7000-8000-000000000000';

async function expectGone(
  app: ReturnType<typeof appOver>['app'],
  secrets: string[],
  logged: string[],
) {
  const requests: Array<[string, RequestInit?]> = [
    ['/v1/tasks'],
    [`/v1/tasks/${ID}`],
    [`/v1/tasks/${ID}?wait=0`],
    [`/v1/tasks/${ID}?wait=1`], // a long-poll waits for the database until its deadline, then says so
    [`/v1/tasks/${ID}/events`],
    [`/v1/tasks/${ID}/events`, { headers: { accept: 'text/event-stream' } }],
    [`/v1/tasks/${ID}/cancel`, { method: 'POST' }],
    [
      '/v1/tasks',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: { prompt: 'hi' } }),
      },
    ],
  ];
  for (const [path, init] of requests) {
    const res = await app.request(path, init);
    const text = await res.clone().text();
    expect(res.status, `${init?.method ?? 'GET'} ${path}`).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await errorOf(res)).code).toBe('database_unavailable');
    for (const secret of secrets) expect(text).not.toContain(secret);
  }
  const ready = await app.request('/readyz');
  expect(ready.status).toBe(503);
  const readyText = await ready.text();
  expect(JSON.parse(readyText)).toEqual({ status: 'not_ready', reason: 'database_unavailable' });
  for (const secret of secrets) expect(readyText).not.toContain(secret);
  // The operator still learns the cause, from the log.
  expect(logged.join('')).toContain(secrets[0]);
}

describe('the database is gone', () => {
  it('nothing listens on its port: 503 database_unavailable, and nothing about where it was', async () => {
    const port = await closedPort();
    const logged: string[] = [];
    const { app, close } = appOver(
      `postgres://agentq:hunter2@127.0.0.1:${port}/agentq_secret_db`,
      logged,
    );
    try {
      await expectGone(app, ['ECONNREFUSED', String(port), 'agentq_secret_db', 'hunter2'], logged);
    } finally {
      await close();
    }
  });

  it('the server answers but the database does not exist: the same, without its name', async () => {
    const url = new URL(tdb.url);
    url.pathname = '/agentq_dropped_db';
    const logged: string[] = [];
    const { app, close } = appOver(url.toString(), logged);
    try {
      await expectGone(app, ['agentq_dropped_db', url.port], logged);
    } finally {
      await close();
    }
  });
});
