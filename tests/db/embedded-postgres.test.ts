// The embedded Postgres runs in its own process group (a terminal's Ctrl-C to
// our group must not reach it), and a server an earlier run left behind (its
// node process killed outright) is stopped before a new one starts on the data.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../shared/db/embedded-postgres.ts';
import { waitFor } from '../helpers/wait-for.ts';

const started: EmbeddedDatabase[] = [];
let dir: string | undefined;
afterAll(async () => {
  for (const db of started) await db.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const pgid = (pid: number) =>
  Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)]).toString());
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('embedded Postgres', () => {
  it('runs in its own process group, and replaces a server left running on its data', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'agentq-embedded-'));
    const dataDir = path.join(dir, 'pg');
    const first = await startEmbeddedPostgres({ dataDir, persistent: true });
    started.push(first);
    expect(pgid(first.pid)).toBe(first.pid);
    expect(pgid(first.pid)).not.toBe(pgid(process.pid));

    // Not stopped, as after a kill -9 of the node process that started it.
    const warnings: string[] = [];
    const second = await startEmbeddedPostgres({
      dataDir,
      persistent: true,
      warn: (m) => warnings.push(m),
    });
    started.push(second);
    expect(warnings).toEqual([
      `stopping a Postgres (pid ${first.pid}) left running on ${dataDir} by an earlier run`,
    ]);
    await waitFor(() => !isAlive(first.pid), { what: 'the leftover server to be gone' });
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await client.end();
    await second.stop();
    expect(isAlive(second.pid)).toBe(false);
  });
});
