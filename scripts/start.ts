/**
 * `npm start`: everything in one process for a laptop. Uses DATABASE_URL when
 * set; otherwise an embedded Postgres whose data lives in .agentq/. Applies
 * migrations, starts the API and a worker, and prints how to try it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../api/server.ts';
import { createPool } from '../shared/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../shared/db/embedded-postgres.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';
import {
  keepRunningOnUnhandledRejection,
  loadConfigOrExit,
  onShutdownSignal,
} from '../shared/process-main.ts';
import { startWorker } from '../worker/worker.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = loadConfigOrExit(process.env);
const logger = createLogger('start', config.logLevel);
keepRunningOnUnhandledRejection(logger);

let embedded: EmbeddedDatabase | undefined;
let connectionString = config.databaseUrl;
if (!connectionString) {
  // AGENTQ_DATA_DIR moves it (the tests start `npm start` in a scratch directory).
  const dataDir = path.join(process.env.AGENTQ_DATA_DIR ?? path.join(root, '.agentq'), 'pg');
  logger.info({ dataDir }, 'DATABASE_URL is not set: starting an embedded Postgres');
  embedded = await startEmbeddedPostgres({ dataDir, port: 54329, persistent: true });
  connectionString = embedded.url;
}

// One pool for the API and the worker in this process.
const pool = createPool({ connectionString, applicationName: 'agentq', max: 2 * config.dbPoolMax });
const { applied } = await migrateDatabase(pool);
if (applied.length) logger.info({ applied }, 'migrations applied');
const api = await startApi({
  config,
  pool,
  connectionString,
  logger: logger.child({ component: 'api' }),
});
const worker = await startWorker({
  config,
  pool,
  connectionString,
  logger: logger.child({ component: 'worker' }),
});

const auth = config.apiTokens.length ? ` -H 'Authorization: Bearer <token>'` : '';
process.stdout.write(
  [
    '',
    `agentq is running at ${api.url}` +
      (config.defaultProvider === 'offline'
        ? '  (provider: offline demo — set OPENAI_API_KEY or GOOGLE_API_KEY for a real model)'
        : `  (default provider: ${config.defaultProvider})`),
    '',
    'Try it:',
    `  curl -s -X POST ${api.url}/v1/tasks${auth} -H 'Content-Type: application/json' \\`,
    `       -d '{"input":{"prompt":"What is 17 * 23? Use the calculator."}}'`,
    `  curl -s "${api.url}/v1/tasks/<id>?wait=30"${auth}`,
    `  curl -s ${api.url}/v1/tasks/<id>/events${auth}`,
    '',
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);

onShutdownSignal(async () => {
  await worker.stop();
  await api.stop();
  await pool.end();
  await embedded?.stop();
});
