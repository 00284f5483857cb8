/**
 * The Postgres the benchmark runs on: DATABASE_URL, else TEST_DATABASE_URL,
 * else an embedded one in a temporary directory. Creates the fresh, migrated
 * databases each system gets, and drops them again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPool } from '../shared/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../shared/db/embedded-postgres.ts';
import { migrateDatabase } from '../shared/db/migrate.ts';

export interface BenchPostgres {
  adminUrl: string;
  /** Where it came from, for the report. */
  source: 'DATABASE_URL' | 'TEST_DATABASE_URL' | 'embedded';
  serverVersion: string;
  /** Creates and migrates (graphile_worker + agentq) a new database; returns its URL. */
  createMigratedDatabase(name: string): Promise<string>;
  /** Drops every database created here, then stops an embedded server. */
  close(): Promise<void>;
}

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function adminQuery(adminUrl: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({
    connectionString: adminUrl,
    application_name: 'agentq-bench-admin',
  });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

export async function openBenchPostgres(env: NodeJS.ProcessEnv): Promise<BenchPostgres> {
  let embedded: EmbeddedDatabase | undefined;
  let tmpDir: string | undefined;
  let adminUrl: string;
  let source: BenchPostgres['source'];
  if (env.DATABASE_URL) {
    adminUrl = env.DATABASE_URL;
    source = 'DATABASE_URL';
  } else if (env.TEST_DATABASE_URL) {
    adminUrl = env.TEST_DATABASE_URL;
    source = 'TEST_DATABASE_URL';
  } else {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'agentq-bench-'));
    try {
      embedded = await startEmbeddedPostgres({
        dataDir: path.join(tmpDir, 'pg'),
        persistent: false,
      });
    } catch (err) {
      await rm(tmpDir, { recursive: true, force: true });
      throw err;
    }
    adminUrl = embedded.url;
    source = 'embedded';
  }

  const created: string[] = [];
  const close = async () => {
    try {
      for (const name of created.reverse()) {
        // FORCE ends whatever connection a failed phase may have left behind.
        await adminQuery(
          adminUrl,
          `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`,
        );
      }
    } finally {
      try {
        await embedded?.stop();
      } finally {
        if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
      }
    }
  };

  let serverVersion: string;
  try {
    const { rows } = await adminQuery(adminUrl, 'SHOW server_version');
    serverVersion = String((rows[0] as { server_version: string }).server_version);
  } catch (err) {
    await close();
    throw err;
  }

  return {
    adminUrl,
    source,
    serverVersion,
    async createMigratedDatabase(name) {
      await adminQuery(
        adminUrl,
        `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`,
      );
      await adminQuery(adminUrl, `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      created.push(name);
      const url = databaseUrl(adminUrl, name);
      const pool = createPool({
        connectionString: url,
        applicationName: 'agentq-bench-migrate',
        max: 2,
      });
      try {
        await migrateDatabase(pool);
      } finally {
        await pool.end();
      }
      return url;
    },
    close,
  };
}
