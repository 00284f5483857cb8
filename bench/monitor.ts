/**
 * One connection per benchmark database for everything the benchmark itself
 * asks while a phase runs: "is it done yet?" polls and the database's write
 * counters. Its own statements are counted so they can be taken out of the
 * per-task numbers.
 */
import pg from 'pg';
import { pollUntil } from './measure.ts';

export interface WriteCounters {
  commits: number;
  inserted: number;
  updated: number;
  deleted: number;
  /** Statements this monitor had sent before this reading. */
  monitorQueries: number;
}

export interface WritesPerTask {
  commits: number;
  rowWrites: number;
}

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url, application_name: 'agentq-bench-monitor' });
  client.on('error', () => {}); // a dropped monitor fails its next query instead of crashing
  await client.connect();
  return client;
};

export class Monitor {
  private queries = 0;

  private constructor(
    private readonly url: string,
    private client: pg.Client,
  ) {}

  static async connect(url: string): Promise<Monitor> {
    return new Monitor(url, await connect(url));
  }

  async query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    this.queries += 1;
    const result = await this.client.query<R>(text, values);
    return result.rows;
  }

  async count(text: string, values?: unknown[]): Promise<number> {
    const rows = await this.query<{ n: number | string }>(text, values);
    return Number(rows[0]?.n ?? 0);
  }

  /**
   * pg_stat_database for this database, complete. A backend publishes its
   * counters when it exits, but an idle one may hold them back for up to
   * 10 s; so the caller must have ended every other connection to the
   * database, this waits until their backends are gone, and replaces its own
   * connection (the old one's counters are published as it exits).
   */
  async writeCounters(): Promise<WriteCounters> {
    const old = this.client;
    this.client = await connect(this.url);
    await old.end().catch(() => {});
    const monitorQueries = this.queries;
    await pollUntil(
      async () =>
        (await this.count(
          `SELECT count(*) AS n FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
        )) === 0,
      {
        intervalMs: 20,
        timeoutMs: 30_000,
        what: 'the other connections to the benchmark database to close',
      },
    );
    const rows = await this.query<{ c: string; i: string; u: string; d: string }>(
      `SELECT xact_commit AS c, tup_inserted AS i, tup_updated AS u, tup_deleted AS d
       FROM pg_stat_database WHERE datname = current_database()`,
    );
    const row = rows[0]!;
    return {
      commits: Number(row.c),
      inserted: Number(row.i),
      updated: Number(row.u),
      deleted: Number(row.d),
      // The waiting polls above belong to this reading's side of the ledger:
      // they ran after `before` was taken and before `after` will be.
      monitorQueries,
    };
  }

  /**
   * Commits and row writes (inserts + updates + deletes) per task between two
   * readings, without the monitor's own (read-only) transactions.
   */
  static perTask(before: WriteCounters, after: WriteCounters, tasks: number): WritesPerTask {
    const ownCommits = after.monitorQueries - before.monitorQueries;
    const rows =
      after.inserted -
      before.inserted +
      (after.updated - before.updated) +
      (after.deleted - before.deleted);
    return {
      commits: (after.commits - before.commits - ownCommits) / tasks,
      rowWrites: rows / tasks,
    };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
