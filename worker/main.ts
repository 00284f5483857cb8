/** `npm run worker`: one worker process against DATABASE_URL (run `npm run migrate` first). */
import { logStartFacts } from '../shared/banner.ts';
import { requireDatabaseUrl } from '../shared/config.ts';
import { logBudget, waitForDatabase, workerBudget } from '../shared/db/connection-budget.ts';
import { createPool } from '../shared/db/database.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import {
  keepRunningOnUnhandledRejection,
  loadConfigOrExit,
  onShutdownSignal,
} from '../shared/process-main.ts';
import { startTracingOrExit } from '../shared/tracing.ts';
import { startWorker } from './worker.ts';

const config = loadConfigOrExit(process.env);
const logger = createLogger('worker', config.logLevel);
let connectionString: string;
try {
  connectionString = requireDatabaseUrl(config);
} catch (err) {
  process.stderr.write(`agentq: ${(err as Error).message}\n`);
  process.exit(1);
}
logStartFacts(logger, config, connectionString);
const budget = workerBudget(config);
logBudget(logger, budget);
if (config.defaultProvider === 'offline') logger.warn(config.defaultProviderReason);
// With OTEL_EXPORTER_OTLP_ENDPOINT set, attempt, model-call and tool-call spans are exported.
const tracing = await startTracingOrExit(process.env, { serviceName: 'agentq-worker', logger });
const pool = createPool({
  connectionString,
  applicationName: 'agentq-worker',
  max: config.dbPoolMax,
});
keepRunningOnUnhandledRejection(logger);
await waitForDatabase(pool, { url: connectionString, budget, logger });
const worker = await startWorker({
  config,
  pool,
  connectionString,
  directConnectionString: config.directDatabaseUrl,
  logger,
  metrics: createMetricsRegistry(),
});
let stopping = false;
onShutdownSignal(async () => {
  stopping = true;
  await worker.stop();
  await pool.end();
  await tracing.shutdown();
});
worker.done.then(
  async () => {
    if (stopping) return;
    // graphile-worker stopped its pool on its own (it does on errors it cannot
    // recover from): hand running tasks back and exit, so a supervisor starts
    // a fresh worker rather than this one heartbeating with nothing to run.
    logger.error('graphile-worker stopped on its own; stopping this worker');
    await worker.stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
    await pool.end().catch(() => {});
    process.exit(1);
  },
  (err: unknown) => {
    logger.fatal({ err }, 'worker runner failed');
    process.exit(1);
  },
);
