/**
 * Builds the pg pool and the Kysely instance over it. Only `main.ts` files and
 * test helpers call this; everything else receives `db` as an argument.
 */
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './schema.ts';

export type Db = Kysely<Database>;

// bigint (int8) as string would surprise nobody reading ids, but counts come back
// as int8 too; parse them as numbers (they never approach 2^53 here).
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName: string;
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName,
    // Fail fast instead of queueing forever when the database is unreachable.
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client that loses its connection (pg_terminate_backend, a restart)
  // emits 'error' on the pool; without a listener that would crash the process.
  // The pool drops the client and makes a new one on the next checkout.
  pool.on('error', () => {});
  // Same for a checked-out client: its query rejects, and the error must not
  // also surface as an unhandled 'error' event.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export function createDb(pool: pg.Pool): Db {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
