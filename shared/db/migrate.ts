/**
 * Applies graphile-worker's schema and then agentq's forward-only SQL files in
 * migrations/ (through Kysely's Migrator, which records them in
 * agentq.kysely_migration). Two processes starting at once are safe: the whole
 * run holds one session-level advisory lock, so the second waits and then finds
 * nothing to do.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type pg from 'pg';
import { Migrator, sql, type Migration, type MigrationProvider } from 'kysely';
import { Logger, runMigrations } from 'graphile-worker';
import { createDb } from './database.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

// Any fixed 64-bit number; it only has to be the same in every agentq process.
const MIGRATION_LOCK_ID = 7_358_240_113;

const quietGraphileLogger = new Logger(() => () => {});

/** Reads `NNNN_name.sql` files; each file runs as one migration in one transaction. */
class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => f.endsWith('.sql')).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(path.join(this.dir, file), 'utf8');
      migrations[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

// The Kysely instance is not destroyed after use: that would end the caller's pool.
function makeMigrator(pool: pg.Pool, dir: string): Migrator {
  return new Migrator({
    db: createDb(pool),
    provider: new SqlFileMigrationProvider(dir),
    migrationTableSchema: 'agentq',
  });
}

export interface MigrateResult {
  applied: string[];
}

export async function migrateDatabase(
  pool: pg.Pool,
  options: { dir?: string } = {},
): Promise<MigrateResult> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    try {
      // graphile-worker first: agentq's views read graphile_worker.jobs.
      await runMigrations({ pgPool: pool, logger: quietGraphileLogger });
      // The migrator keeps its bookkeeping tables in schema agentq.
      await client.query('CREATE SCHEMA IF NOT EXISTS agentq');
      const { error, results } = await makeMigrator(
        pool,
        options.dir ?? MIGRATIONS_DIR,
      ).migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error');
        throw new Error(
          `migration ${failed?.migrationName ?? '(unknown)'} failed: ${String((error as Error).message ?? error)}`,
          { cause: error },
        );
      }
      return { applied: (results ?? []).map((r) => r.migrationName) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
    }
  } finally {
    client.release();
  }
}

/** Names of migrations on disk that the database has not applied (empty = current). */
export async function pendingMigrations(pool: pg.Pool, dir = MIGRATIONS_DIR): Promise<string[]> {
  const all = await makeMigrator(pool, dir).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
