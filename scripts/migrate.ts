/**
 * `npm run migrate`: brings the database's schemas (graphile_worker, agentq) up
 * to date, over AGENTQ_DIRECT_DATABASE_URL when set: the run holds a
 * session-level advisory lock, which a transaction-mode pooler cannot keep.
 */
import { requireDatabaseUrl } from '../shared/config.ts';
import { createPool } from '../shared/db/database.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';
import { createLogger } from '../shared/logger.ts';
import { loadConfigOrExit } from '../shared/process-main.ts';

const config = loadConfigOrExit(process.env);
const logger = createLogger('migrate', config.logLevel);
let url: string;
try {
  url = requireDatabaseUrl(config);
} catch (err) {
  process.stderr.write(`agentq: ${(err as Error).message}\n`);
  process.exit(1);
}
url = config.directDatabaseUrl ?? url;
const pool = createPool({ connectionString: url, applicationName: 'agentq-migrate', max: 2 });
try {
  const { applied } = await migrateDatabase(pool);
  logger.info({ applied }, applied.length ? 'migrations applied' : 'schema already current');
} catch (err) {
  logger.fatal({ err }, 'migration failed');
  process.exitCode = 1;
} finally {
  await pool.end();
}
