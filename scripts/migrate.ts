/** `npm run migrate`: brings DATABASE_URL's schemas (graphile_worker, agentq) up to date. */
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
