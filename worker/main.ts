/** `npm run worker`: one worker process against DATABASE_URL (run `npm run migrate` first). */
import { logStartFacts } from '../shared/banner.ts';
import { requireDatabaseUrl } from '../shared/config.ts';
import { createPool } from '../shared/db/database.ts';
import { createLogger } from '../shared/logger.ts';
import {
  keepRunningOnUnhandledRejection,
  loadConfigOrExit,
  onShutdownSignal,
} from '../shared/process-main.ts';
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
if (config.defaultProvider === 'offline') logger.warn(config.defaultProviderReason);
const pool = createPool({
  connectionString,
  applicationName: 'agentq-worker',
  max: config.dbPoolMax,
});
keepRunningOnUnhandledRejection(logger);
const worker = await startWorker({ config, pool, connectionString, logger });
onShutdownSignal(async () => {
  await worker.stop();
  await pool.end();
});
worker.done.then(
  () => {},
  (err: unknown) => {
    logger.fatal({ err }, 'worker runner failed');
    process.exit(1);
  },
);
