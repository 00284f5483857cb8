/** `npm run api`: the HTTP API alone, against DATABASE_URL (run `npm run migrate` first). */
import { logStartFacts } from '../shared/banner.ts';
import { requireDatabaseUrl } from '../shared/config.ts';
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
// Before the app is built: with OTEL_EXPORTER_OTLP_ENDPOINT set, request spans are exported.
const tracing = await startTracingOrExit(process.env, { serviceName: 'agentq-api', logger });
const pool = createPool({ connectionString, applicationName: 'agentq-api', max: config.dbPoolMax });
const api = await startApi({
  config,
  pool,
  connectionString,
  logger,
  metrics: createMetricsRegistry(),
});
onShutdownSignal(async () => {
  await api.stop();
  await pool.end();
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
