/** What the API's routes are built from; `main.ts` (or a test) makes these and passes them in. */
import type pg from 'pg';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db/database.ts';
import type { NotificationListener } from '../shared/db/notification-listener.ts';
import type { Logger } from '../shared/logger.ts';

export interface AppDeps {
  db: Db;
  pool: pg.Pool;
  config: Config;
  logger: Logger;
  /** LISTENs on agentq_task and agentq_event. */
  listener: NotificationListener;
  /** Fires when the server shuts down: long-polls answer at once and streams end. */
  shutdownSignal: AbortSignal;
}
