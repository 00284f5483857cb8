/**
 * `npm start`: everything in one process for a laptop. Uses DATABASE_URL when
 * set; otherwise an embedded Postgres whose data lives in .agentq/. Applies
 * migrations, starts the API and a worker, and prints how to try it.
 *
 * Ctrl-C (or SIGTERM to npm, which passes it on: the script line `exec`s node)
 * stops the worker first (running tasks requeued, its row deregistered), then
 * the API, and the embedded Postgres last; it runs in its own process group,
 * so the terminal's Ctrl-C does not reach it directly.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../api/server.ts';
import { logStartFacts, startBanner } from '../shared/banner.ts';
import { createPool } from '../shared/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../shared/db/embedded-postgres.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createRootLogger, forComponent } from '../shared/logger.ts';
import { createMetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import {
  keepRunningOnUnhandledRejection,
  loadConfigOrExit,
  onShutdownSignal,
} from '../shared/process-main.ts';
import { startTracingOrExit } from '../shared/tracing.ts';
import { startWorker } from '../worker/worker.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = loadConfigOrExit(process.env);
const rootLogger = createRootLogger(config.logLevel);
const logger = forComponent(rootLogger, 'start');
keepRunningOnUnhandledRejection(logger);
// Before the embedded Postgres, so a bad OTEL_* value exits with nothing to clean up.
// API and worker spans share this process's exporter (off unless OTEL_EXPORTER_OTLP_ENDPOINT is set).
const tracing = await startTracingOrExit(process.env, { serviceName: 'agentq', logger });

let embedded: EmbeddedDatabase | undefined;
let embeddedDataDir: string | undefined;
let connectionString = config.databaseUrl;
if (!connectionString) {
  // AGENTQ_DATA_DIR moves it (the tests start `npm start` in a scratch directory).
  embeddedDataDir = path.join(process.env.AGENTQ_DATA_DIR ?? path.join(root, '.agentq'), 'pg');
  logger.info(
    { dataDir: embeddedDataDir },
    'DATABASE_URL is not set: starting an embedded Postgres',
  );
  embedded = await startEmbeddedPostgres({
    dataDir: embeddedDataDir,
    port: 54329,
    persistent: true,
    log: (line) => logger.debug({ postgres: line.trim() }, 'embedded Postgres'),
    warn: (message) => logger.warn(message),
  });
  connectionString = embedded.url;
}
logStartFacts(logger, config, connectionString);

// One pool for the API and the worker in this process.
const pool = createPool({ connectionString, applicationName: 'agentq', max: 2 * config.dbPoolMax });
const [api, worker] = await startParts(connectionString).catch(async (err: unknown) => {
  // One line a newcomer can act on (a taken port, most often), not a stack.
  const e = err as NodeJS.ErrnoException;
  const message =
    e.code === 'EADDRINUSE'
      ? `port ${config.port} is in use (set PORT to another)`
      : String(e.message ?? err);
  logger.fatal({ err }, 'start failed');
  process.stderr.write(`agentq: could not start: ${message}\n`);
  await pool.end().catch(() => {});
  await embedded?.stop();
  process.exit(1);
});

async function startParts(connectionString: string) {
  // LISTEN and the migration lock need a session: AGENTQ_DIRECT_DATABASE_URL
  // when DATABASE_URL leads to a pooler (the embedded Postgres needs neither).
  const directUrl = config.databaseUrl
    ? (config.directDatabaseUrl ?? connectionString)
    : connectionString;
  const migratePool =
    directUrl === connectionString
      ? pool
      : createPool({ connectionString: directUrl, applicationName: 'agentq-migrate', max: 2 });
  const { applied } = await migrateDatabase(migratePool).finally(async () => {
    if (migratePool !== pool) await migratePool.end();
  });
  // One registry for the process: the API's /metrics shows the worker's metrics too.
  const metrics = createMetricsRegistry();
  if (applied.length) logger.info({ applied }, 'migrations applied');
  const api = await startApi({
    config,
    pool,
    connectionString: directUrl,
    logger: forComponent(rootLogger, 'api'),
    metrics,
  });
  const worker = await startWorker({
    config,
    pool,
    connectionString,
    directConnectionString: directUrl,
    logger: forComponent(rootLogger, 'worker'),
    metrics,
  }).catch(async (err: unknown) => {
    await api.stop();
    throw err;
  });
  return [api, worker] as const;
}

process.stdout.write(
  startBanner({ config, apiUrl: api.url, databaseUrl: connectionString, embeddedDataDir }),
);

// The order matters: the worker requeues and deregisters through the
// database, so the database goes last, even when an earlier step fails.
onShutdownSignal(async () => {
  try {
    await worker.stop();
    await api.stop();
    await pool.end();
    await tracing.shutdown();
  } finally {
    await embedded?.stop();
  }
});
