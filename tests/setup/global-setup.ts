/**
 * Once per test run: find a Postgres (TEST_DATABASE_URL, or an embedded one
 * started here), build a migrated template database, and hand both to the test
 * files, which clone the template (tests/helpers/test-db.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPool } from '../../shared/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../shared/db/embedded-postgres.ts';
import { migrateDatabase } from '../../shared/db/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let tmp: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  // Which Node runs the suite (CI runs it on the machine's Node and on Node 24).
  console.log(`[agentq tests] Node ${process.version} (${process.execPath})`);
  if (!adminUrl) {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'agentq-test-'));
    embedded = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'pg'), persistent: false });
    adminUrl = embedded.url;
    console.log(
      `[agentq tests] TEST_DATABASE_URL not set: started an embedded Postgres on port ${embedded.port}`,
    );
  } else {
    console.log(`[agentq tests] using TEST_DATABASE_URL (${new URL(adminUrl).host})`);
  }

  const templateDb = `agentq_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${templateDb}`);
  await admin.query(`CREATE DATABASE ${templateDb}`);
  const pool = createPool({
    connectionString: databaseUrl(adminUrl, templateDb),
    applicationName: 'agentq-test-template',
  });
  await migrateDatabase(pool);
  await pool.end();

  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);

  return async () => {
    // Test databases left by files that failed before cleaning up.
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`agentq_t_${process.pid}_%`],
    );
    for (const { datname } of [...rows, { datname: templateDb }]) {
      await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => {});
    }
    await admin.end();
    await embedded?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
}
