/**
 * The worker's /readyz answer (served by its metrics listener): ready when
 * the database answers, its migrations are current, the worker registered
 * with its first heartbeat and graphile-worker is running. Each not-ready
 * answer carries a stable reason; the database's own error (hosts, ports,
 * names) goes to the log only.
 */
import type pg from 'pg';
import { pendingMigrations } from '../shared/db/migrate.ts';
import type { Logger } from '../shared/logger.ts';
import type { Readiness } from './metrics-server.ts';

/** What the worker knows about itself; `pool` is set once it is registered. */
export interface WorkerState {
  stopping: boolean;
  registered: boolean;
  runnerStopped: boolean;
  /** A pool the tasks cannot exhaust (the heartbeat's), for the database check. */
  pool: pg.Pool | undefined;
}

// A probe that waits longer than this has failed anyway (orchestrators give up after seconds).
const DATABASE_CHECK_MS = 5000;

const notReady = (reason: string, message: string, details?: Record<string, unknown>) =>
  ({ ready: false, reason, message, ...(details ? { details } : {}) }) as const;

export function workerReadiness(state: WorkerState, logger: Logger): () => Promise<Readiness> {
  return async () => {
    if (state.stopping) return notReady('shutting_down', 'the worker is stopping');
    if (state.runnerStopped) return notReady('runner_stopped', 'graphile-worker has stopped');
    if (!state.registered || !state.pool)
      return notReady('starting', 'the worker has not registered with its first heartbeat yet');
    let pending: string[];
    let timer: NodeJS.Timeout | undefined;
    try {
      pending = await Promise.race([
        pendingMigrations(state.pool),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${DATABASE_CHECK_MS} ms`)),
            DATABASE_CHECK_MS,
          );
        }),
      ]);
    } catch (err) {
      logger.warn({ err }, 'readiness check: the database did not answer');
      return notReady('database_unavailable', 'the database does not answer (see the worker log)');
    } finally {
      clearTimeout(timer);
    }
    if (pending.length > 0)
      return notReady('migrations_pending', 'the database schema is behind: run the migrations', {
        pending_migrations: pending,
      });
    return { ready: true };
  };
}
