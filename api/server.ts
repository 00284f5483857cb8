/**
 * Starts the API on a port and stops it cleanly: stop accepting, end
 * long-polls and streams, let in-flight requests finish, close the listener.
 * `main.ts` uses it; so does `npm start` (scripts/start.ts).
 */
import { serve, type ServerType } from '@hono/node-server';
import type pg from 'pg';
import type { Config } from '../shared/config.ts';
import { createDb } from '../shared/db/database.ts';
import { NotificationListener } from '../shared/db/notification-listener.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import { createApp } from './app.ts';

export interface RunningApi {
  url: string;
  stop(): Promise<void>;
}

export async function startApi(options: {
  config: Config;
  pool: pg.Pool;
  /** A URL with a session, for LISTEN (AGENTQ_DIRECT_DATABASE_URL); the pool's may lead to a pooler. */
  connectionString: string;
  /** The task list reads from it (AGENTQ_READ_DATABASE_URL); default `pool`. */
  readPool?: pg.Pool;
  logger: Logger;
  /** The process's metrics registry (`npm start` shares one with its worker). */
  metrics?: MetricsRegistry;
}): Promise<RunningApi> {
  const { config, pool, logger } = options;
  const listener = new NotificationListener({
    connectionString: options.connectionString,
    channels: ['agentq_task', 'agentq_event'],
    logger,
    applicationName: 'agentq-api-listen',
    pollIntervalMs: config.pollIntervalMs,
  });
  await listener.start();
  const shutdown = new AbortController();
  // Known once the socket is bound (PORT=0 picks one); the Host check of an open API needs it.
  const bound: { port?: number } = {};
  const app = createApp({
    db: createDb(pool),
    ...(options.readPool ? { readDb: createDb(options.readPool) } : {}),
    pool,
    config,
    logger,
    listener,
    shutdownSignal: shutdown.signal,
    listenPort: () => bound.port,
    metrics: options.metrics,
  });

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () =>
      resolve(s),
    );
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  bound.port = port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (config.apiTokens.length === 0) {
    logger.warn(
      { url },
      'AGENTQ_API_TOKENS is not set: the API is open, so it listens on loopback only and answers only loopback Host and Origin headers',
    );
  }
  logger.info({ url }, 'api listening');

  return {
    url,
    async stop() {
      logger.info('api stopping');
      shutdown.abort(); // long-polls answer now, streams end
      await new Promise<void>((resolve) => {
        const http = server as unknown as {
          closeIdleConnections(): void;
          closeAllConnections(): void;
        };
        // In-flight requests finish; a keep-alive socket is closed as soon as it
        // goes idle instead of lingering for its timeout; after 10 s, everything.
        const idle = setInterval(() => http.closeIdleConnections(), 50);
        const hard = setTimeout(() => http.closeAllConnections(), 10_000);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(hard);
          resolve();
        });
        http.closeIdleConnections();
      });
      await listener.stop();
      logger.info('api stopped');
    },
  };
}
