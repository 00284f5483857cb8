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
  /** Which URL it opens: DATABASE_URL, the direct one (LISTEN) or the read one. */
  on: 'pooled' | 'direct' | 'read';
}

export interface ConnectionBudget {
  parts: BudgetPart[];
  total: number;
  /** Connections on AGENTQ_DIRECT_DATABASE_URL, when it differs from DATABASE_URL (else 0). */
  direct: number;
  /** Connections on AGENTQ_READ_DATABASE_URL. */
  read: number;
}

function budget(config: Config, parts: BudgetPart[]): ConnectionBudget {
  const sum = (on: BudgetPart['on']) =>
    parts.filter((p) => p.on === on).reduce((n, p) => n + p.connections, 0);
  return {
    parts,
    total: parts.reduce((n, p) => n + p.connections, 0),
    direct: config.directDatabaseUrl !== config.databaseUrl ? sum('direct') : 0,
    read: sum('read'),
  };
}

/** The API: its query pool, the optional read pool, and its LISTEN connection. */
export function apiBudget(config: Config): ConnectionBudget {
  const parts: BudgetPart[] = [{ name: 'pool', connections: config.dbPoolMax, on: 'pooled' }];
  if (config.readDatabaseUrl)
    parts.push({ name: 'read pool', connections: config.readPoolMax, on: 'read' });
  parts.push({ name: 'listener', connections: 1, on: 'direct' });
  return budget(config, parts);
}

/**
 * A worker: the query pool graphile-worker shares (it keeps one connection of
 * it for its own LISTEN), the recovery checks' pool, the heartbeat thread's
 * connection, and the LISTEN connection.
 */
export function workerBudget(config: Config): ConnectionBudget {
  return budget(config, [
    { name: 'pool (tasks and graphile-worker)', connections: config.dbPoolMax, on: 'pooled' },
    { name: 'recovery', connections: config.recoveryPoolMax, on: 'pooled' },
    { name: 'heartbeat', connections: 1, on: 'pooled' },
    { name: 'listener', connections: 1, on: 'direct' },
  ]);
}

/** e.g. `pool 10 + listener 1 = 11 (10 on DATABASE_URL, 1 on AGENTQ_DIRECT_DATABASE_URL)`. */
export function formatBudget(b: ConnectionBudget): string {
  const sum = `${b.parts.map((p) => `${p.name} ${p.connections}`).join(' + ')} = ${b.total}`;
  if (b.direct === 0 && b.read === 0) return `${sum} (all on DATABASE_URL)`;
  const where = [`${b.total - b.direct - b.read} on DATABASE_URL`];
  if (b.direct > 0) where.push(`${b.direct} on AGENTQ_DIRECT_DATABASE_URL`);
  if (b.read > 0) where.push(`${b.read} on AGENTQ_READ_DATABASE_URL`);
  return `${sum} (${where.join(', ')})`;
}

export function logBudget(logger: Logger, b: ConnectionBudget): void {
  logger.info(
    { connections: b.total, direct: b.direct, read: b.read },
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
