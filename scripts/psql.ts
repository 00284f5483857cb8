/**
 * `npm run psql`: opens psql on agentq's database, for the queries in
 * docs/sql.md. DATABASE_URL when set; otherwise the embedded Postgres that
 * `npm start` runs (data in .agentq/pg, or $AGENTQ_DATA_DIR/pg), found through
 * its postmaster.pid, which names the port, so a start that moved off 54329
 * (port taken) is still found. Extra arguments go to psql
 * (`npm run psql -- -c 'SELECT * FROM agentq.queue_stats'`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The URL psql should open, or a one-line reason why there is none. */
export function resolvePsqlUrl(
  env: NodeJS.ProcessEnv,
  root = ROOT,
): { url: string } | { problem: string } {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL };
  const dataDir = path.join(path.resolve(env.AGENTQ_DATA_DIR ?? path.join(root, '.agentq')), 'pg');
  let lines: string[];
  try {
    // postmaster.pid: pid, data directory, start time, port, socket dir, listen address, …
    lines = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    lines = [];
  }
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!(pid > 0) || !(port > 0) || !isAlive(pid)) {
    return {
      problem: `no database is running: DATABASE_URL is not set and no embedded Postgres runs on ${dataDir} (start one with \`npm start\`)`,
    };
  }
  // The password `npm start` gives the embedded cluster (shared/db/embedded-postgres.ts).
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres` };
}

function main() {
  const target = resolvePsqlUrl(process.env);
  if ('problem' in target) {
    process.stderr.write(`agentq psql: ${target.problem}\n`);
    process.exit(1);
  }
  const child = spawn('psql', [target.url, ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('error', (err: NodeJS.ErrnoException) => {
    process.stderr.write(
      err.code === 'ENOENT'
        ? 'agentq psql: psql is not installed (install the PostgreSQL client, e.g. apt-get install postgresql-client)\n'
        : `agentq psql: could not start psql: ${err.message}\n`,
    );
    process.exit(1);
  });
  // psql handles Ctrl-C itself (it cancels the running query); we only wait.
  process.on('SIGINT', () => {});
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main();
}
