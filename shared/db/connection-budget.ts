/**
 * How many Postgres connections one process may hold, said once at start, and
 * the wait for a first connection when the server (or a pooler) has none to
 * give: one clear line per try naming the URL and the budget, with backoff.
 * README "Connection budget" has the formula for a whole deployment.
 */
import type pg from 'pg';
import { maskUrlPassword } from '../banner.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';

export interface BudgetPart {
  name: string;
  connections: number;
  /** Opened on AGENTQ_DIRECT_DATABASE_URL (a session), not on DATABASE_URL. */
  direct: boolean;
}

export interface ConnectionBudget {
  parts: BudgetPart[];
  total: number;
  direct: number;
  /** Whether the direct URL differs from DATABASE_URL. */
  split: boolean;
}

function budget(config: Config, parts: BudgetPart[]): ConnectionBudget {
  return {
    parts,
    total: parts.reduce((n, p) => n + p.connections, 0),
    direct: parts.filter((p) => p.direct).reduce((n, p) => n + p.connections, 0),
    split: config.directDatabaseUrl !== config.databaseUrl,
  };
}

/** The API: its query pool, the optional read pool (another server), and its LISTEN connection. */
export function apiBudget(config: Config): ConnectionBudget {
  return budget(config, [
    { name: 'pool', connections: config.dbPoolMax, direct: false },
    ...(config.readDatabaseUrl
      ? [
          {
            name: 'read pool (AGENTQ_READ_DATABASE_URL)',
            connections: config.readPoolMax,
            direct: false,
          },
        ]
      : []),
    { name: 'listener', connections: 1, direct: true },
  ]);
}

/**
 * A worker: the query pool graphile-worker shares (it keeps one connection of
 * it for its own LISTEN), the recovery checks' pool, the heartbeat thread's
 * connection, and the LISTEN connection.
 */
export function workerBudget(config: Config): ConnectionBudget {
  return budget(config, [
    { name: 'pool (tasks and graphile-worker)', connections: config.dbPoolMax, direct: false },
    { name: 'recovery', connections: config.recoveryPoolMax, direct: false },
    { name: 'heartbeat', connections: 1, direct: false },
    { name: 'listener', connections: 1, direct: true },
  ]);
}

/** e.g. `pool 10 + listener 1 = 11 (direct: 1)`. */
export function formatBudget(b: ConnectionBudget): string {
  const sum = `${b.parts.map((p) => `${p.name} ${p.connections}`).join(' + ')} = ${b.total}`;
  return b.split
    ? `${sum} (of which ${b.direct} on the direct URL)`
    : `${sum} (all on DATABASE_URL)`;
}

export function logBudget(logger: Logger, b: ConnectionBudget): void {
  logger.info(
    { connections: b.total, direct: b.direct, split: b.split },
    `connection budget: ${formatBudget(b)}`,
  );
}

/** The server or the pooler has no connection to give (rather than being down). */
function isOutOfConnections(err: { code?: unknown; message?: unknown }): boolean {
  return (
    err.code === '53300' ||
    /too many (clients|connections)|no more connections|max_client_conn|connection limit/i.test(
      String(err.message ?? ''),
    )
  );
}

const MAX_RETRY_MS = 30_000;

/**
 * Resolves once `pool` gives a connection. Until then each failure is one
 * error line (the URL with its password masked, the reason, this process's
 * budget) and the next try waits twice as long, up to 30 s: never a spin.
 */
export async function waitForDatabase(
  pool: pg.Pool,
  options: { url: string; budget: ConnectionBudget; logger: Logger; signal?: AbortSignal },
): Promise<void> {
  const url = maskUrlPassword(options.url);
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('SELECT 1');
      if (attempt > 1) options.logger.info({ url, attempts: attempt }, 'database connection made');
      return;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const e = err as { code?: unknown; message?: unknown };
      const retryInMs = Math.min(500 * 2 ** (attempt - 1), MAX_RETRY_MS);
      const why = isOutOfConnections(e)
        ? 'the server or pooler is out of connections (see README "Connection budget")'
        : 'cannot connect';
      options.logger.error(
        {
          url,
          code: typeof e.code === 'string' ? e.code : undefined,
          err: String(e.message ?? err),
          budget: formatBudget(options.budget),
          attempt,
          retryInMs,
        },
        `cannot get a database connection at ${url}: ${String(e.message ?? err)} — ${why}; ` +
          `this process needs ${options.budget.total} (${formatBudget(options.budget)}); retrying in ${retryInMs} ms`,
      );
      await new Promise((r) => setTimeout(r, retryInMs));
    }
  }
}
