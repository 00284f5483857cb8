/**
 * The API app in-process over a test database, for route tests through
 * `app.request()` (no port). The LISTEN connection is real, so long-polls and
 * streams behave as in production.
 */
import { pino } from 'pino';
import { createApp } from '../../api/app.ts';
import type { AppDeps } from '../../api/app-deps.ts';
import type { Config } from '../../shared/config.ts';
import { NotificationListener } from '../../shared/db/notification-listener.ts';
import type { TestDatabase } from './test-db.ts';
import { testConfig } from './test-config.ts';

export async function startTestApi(
  tdb: TestDatabase,
  config: Config = testConfig(),
  /** Optional app deps: an injected re-check interval, a listen port for the Host check, the metrics registry and cache. */
  extra: Pick<AppDeps, 'recheckMs' | 'listenPort' | 'metricsCacheMs' | 'metrics'> = {},
) {
  const logger = pino({ level: 'silent' });
  const listener = new NotificationListener({
    connectionString: tdb.url,
    channels: ['agentq_task', 'agentq_event'],
    logger,
    applicationName: 'agentq-test-listen',
  });
  await listener.start();
  const shutdown = new AbortController();
  const app = createApp({
    db: tdb.db,
    pool: tdb.pool,
    config,
    logger,
    listener,
    shutdownSignal: shutdown.signal,
    ...extra,
  });
  const json = (body: unknown, headers: Record<string, string> = {}) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    app,
    listener,
    shutdown,
    /** POST a JSON body. */
    post: (path: string, body: unknown, headers?: Record<string, string>) =>
      app.request(path, json(body, headers)),
    get: (path: string, headers?: Record<string, string>) => app.request(path, { headers }),
    async stop() {
      shutdown.abort();
      await listener.stop();
    },
  };
}

/** Asserts the DESIGN.md error shape and returns the error object. */
export async function errorOf(
  res: Response,
): Promise<{ code: string; message: string; details?: unknown }> {
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  if (
    !body.error ||
    typeof body.error.code !== 'string' ||
    typeof body.error.message !== 'string'
  ) {
    throw new Error(`not the error shape: ${JSON.stringify(body)}`);
  }
  return body.error as { code: string; message: string; details?: unknown };
}
