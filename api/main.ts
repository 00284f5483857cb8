/** `npm run api`: the HTTP API alone, against DATABASE_URL (run `npm run migrate` first). */
import { logStartFacts } from '../shared/banner.ts';
import { requireDatabaseUrl } from '../shared/config.ts';
import { apiBudget, logBudget, waitForDatabase } from '../shared/db/connection-budget.ts';
import { createPool } from '../shared/db/database.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import { loadConfigOrExit, onShutdownSignal } from '../shared/process-main.ts';
import { startTracingOrExit } from '../shared/tracing.ts';
import { startApi } from './server.ts';

const config = loadConfigOrExit(process.env);
const logger = createLogger('api', config.logLevel);
const connectionString = requireDatabaseUrlOrExit();
logStartFacts(logger, config, connectionString);
const budget = apiBudget(config);
logBudget(logger, budget);
// Before the app is built: with OTEL_EXPORTER_OTLP_ENDPOINT set, request spans are exported.
const tracing = await startTracingOrExit(process.env, { serviceName: 'agentq-api', logger });
const pool = createPool({ connectionString, applicationName: 'agentq-api', max: config.dbPoolMax });
const readPool = config.readDatabaseUrl
  ? createPool({
      connectionString: config.readDatabaseUrl,
      applicationName: 'agentq-api-read',
      max: config.readPoolMax,
    })
  : undefined;
await waitForDatabase(pool, { url: connectionString, budget, logger });
const api = await startApi({
  config,
  pool,
  readPool,
  connectionString: config.directDatabaseUrl ?? connectionString,
  logger,
  metrics: createMetricsRegistry(),
});
onShutdownSignal(async () => {
  await api.stop();
  await pool.end();
  await readPool?.end();
  await tracing.shutdown();
});

function requireDatabaseUrlOrExit(): string {
  try {
    return requireDatabaseUrl(config);
  } catch (err) {
    process.stderr.write(`agentq: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
