/**
 * `npm run retention`: one partition maintenance run against
 * AGENTQ_DIRECT_DATABASE_URL (else DATABASE_URL: it needs a session), as
 * the worker's hourly job does it (shared/db/partitions.ts): makes the days
 * ahead, drops whole days older than AGENTQ_RETENTION_DAYS, deletes finished
 * tasks older than it in batches where a day cannot go whole. Prints what it
 * did as one JSON log line.
 */
import { requireDatabaseUrl } from '../shared/config.ts';
import { createPool } from '../shared/db/database.ts';
import { runRetention } from '../shared/db/partitions.ts';
import { createLogger } from '../shared/logger.ts';
import { loadConfigOrExit } from '../shared/process-main.ts';

const config = loadConfigOrExit(process.env);
const logger = createLogger('retention', config.logLevel);
let url: string;
try {
  url = requireDatabaseUrl(config);
  url = config.directDatabaseUrl ?? url;
} catch (err) {
  process.stderr.write(`agentq: ${(err as Error).message}\n`);
  process.exit(1);
}
const pool = createPool({ connectionString: url, applicationName: 'agentq-retention', max: 1 });
try {
  await runRetention({ pool, retentionDays: config.retentionDays, logger });
} catch (err) {
  logger.fatal({ err }, 'partition maintenance failed');
  process.exitCode = 1;
} finally {
  await pool.end();
}
