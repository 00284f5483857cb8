// docs/sql.md is what a person on call pastes into psql: every ```sql block
// in it runs here, verbatim, on a database with known rows, and its result is
// checked to the value (as psql would print it: every column as text).
//
// The rows are historical (finished tasks with chosen timestamps, a worker
// that stopped heartbeating), which the status machine and the frozen-row
// trigger (migrations/0002, 0004) rightly never let a client write. So this
// connection sets `session_replication_role = replica`, which skips triggers,
// and writes the rows directly, events included (no status event is written
// for them; the queries never read those).
//
// The clock is pinned: the queries call now(), and on this connection now()
// resolves to runbook_clock.now() (that schema comes before pg_catalog in the
// search_path), which returns NOW. Minute and day buckets then fall where the
// expectations say, whatever the time the test runs at.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePsqlUrl } from '../../scripts/psql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = '2026-03-10 12:00:30+00';

/** Every ```sql block of docs/sql.md, by the name in its `-- runbook: <name>` line. */
function runbookBlocks(): Map<string, string> {
  const text = readFileSync(path.join(ROOT, 'docs/sql.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const match of text.matchAll(/^```sql\n([\s\S]*?)^```$/gm)) {
    const body = match[1]!;
    const name = /^-- runbook: ([a-z0-9-]+)$/m.exec(body)?.[1];
    if (!name)
      throw new Error(`a sql block of docs/sql.md has no "-- runbook: <name>" line:\n${body}`);
    if (blocks.has(name)) throw new Error(`two sql blocks of docs/sql.md are named ${name}`);
    blocks.set(name, body);
  }
  return blocks;
}

const id = (n: number) => `00000000-0000-7000-8000-${String(n).padStart(12, '0')}`;
const T = {
  runningAlive: id(1),
  runningStale: id(2),
  runningGone: id(3),
  queuedLate: id(4),
  queuedLateWithJob: id(5),
  queuedRecent: id(6),
  queuedScheduled: id(7),
  openai10s: id(11),
  openai40s: id(12),
  openai5m: id(13),
  openai2h: id(14),
  openai3h: id(15),
  openai30h: id(16),
  openai8d: id(17),
  google1m: id(21),
  google20h: id(22),
  failed10m: id(31),
  failed20m: id(32),
  failed30m: id(33),
  failed2h: id(34),
  cancelled3m: id(41),
};

const OPENAI = { provider: 'openai', model: 'gpt-4o-mini' };
const GOOGLE = { provider: 'google', model: 'gemini-2.0-flash' };
const SPENT = { input_tokens: 100, output_tokens: 10, llm_calls: 2, tool_calls: 0 };

interface Row {
  id: string;
  status: string;
  config?: { provider: string; model: string };
  /** Seconds before NOW; null leaves the column NULL. */
  runAtAgo?: number;
  startedAgo?: number | null;
  finishedAgo?: number | null;
  workerId?: string | null;
  errorCode?: string;
  usage?: typeof SPENT;
  attempts?: number;
  webhookUrl?: string;
}

const TASKS: Row[] = [
  { id: T.runningAlive, status: 'running', startedAgo: 30, workerId: 'pool-alive', attempts: 1 },
  { id: T.runningStale, status: 'running', startedAgo: 300, workerId: 'pool-stale', attempts: 2 },
  { id: T.runningGone, status: 'running', startedAgo: 600, workerId: 'pool-gone', attempts: 1 },
  { id: T.queuedLate, status: 'queued', runAtAgo: 600 },
  { id: T.queuedLateWithJob, status: 'queued', runAtAgo: 360 },
  { id: T.queuedRecent, status: 'queued', runAtAgo: 60 },
  { id: T.queuedScheduled, status: 'queued', runAtAgo: -3600 },
  // completed: durations 1, 2, 3, 4, 10 s (openai, last 24 h), 2 and 6 s (google)
  { id: T.openai10s, status: 'completed', finishedAgo: 10, startedAgo: 11 },
  { id: T.openai40s, status: 'completed', finishedAgo: 40, startedAgo: 50 },
  { id: T.openai5m, status: 'completed', finishedAgo: 300, startedAgo: 303 },
  { id: T.openai2h, status: 'completed', finishedAgo: 7200, startedAgo: 7202 },
  { id: T.openai3h, status: 'completed', finishedAgo: 10800, startedAgo: 10804 },
  { id: T.openai30h, status: 'completed', finishedAgo: 30 * 3600, startedAgo: 30 * 3600 + 100 },
  { id: T.openai8d, status: 'completed', finishedAgo: 8 * 86400, startedAgo: 8 * 86400 + 5 },
  { id: T.google1m, status: 'completed', config: GOOGLE, finishedAgo: 60, startedAgo: 62 },
  { id: T.google20h, status: 'completed', config: GOOGLE, finishedAgo: 72000, startedAgo: 72006 },
  { id: T.failed10m, status: 'failed', finishedAgo: 600, errorCode: 'provider_error' },
  { id: T.failed20m, status: 'failed', finishedAgo: 1200, errorCode: 'provider_error' },
  { id: T.failed30m, status: 'failed', finishedAgo: 1800, errorCode: 'timeout' },
  { id: T.failed2h, status: 'failed', finishedAgo: 7200, errorCode: 'provider_error' },
  { id: T.cancelled3m, status: 'cancelled', config: GOOGLE, finishedAgo: 180 },
];

/** A step-log event `ago` seconds before NOW. */
interface Event {
  taskId: string;
  seq: number;
  type: 'tool_result' | 'webhook';
  ago: number;
  data: Record<string, unknown>;
}

const EVENTS: Event[] = [
  {
    taskId: T.openai10s,
    seq: 3,
    type: 'tool_result',
    ago: 60,
    data: { id: 'c1', name: 'http_get', output: 'ok', duration_ms: 1200 },
  },
  {
    taskId: T.openai10s,
    seq: 5,
    type: 'tool_result',
    ago: 50,
    data: { id: 'c2', name: 'calculator', output: '4', duration_ms: 5 },
  },
  {
    taskId: T.openai40s,
    seq: 3,
    type: 'tool_result',
    ago: 300,
    data: { id: 'c3', name: 'http_get', error: 'HTTP 502', duration_ms: 3000 },
  },
  {
    taskId: T.openai5m,
    seq: 3,
    type: 'tool_result',
    ago: 600,
    data: { id: 'c4', name: 'http_get', output: 'ok', duration_ms: 400 },
  },
  {
    taskId: T.openai2h,
    seq: 3,
    type: 'tool_result',
    ago: 7000,
    data: { id: 'c5', name: 'http_get', output: 'ok', duration_ms: 9999 },
  },
  // delivered on the second attempt: not failing
  {
    taskId: T.openai10s,
    seq: 10,
    type: 'webhook',
    ago: 8,
    data: {
      delivery_id: `msg_${T.openai10s}`,
      attempt: 1,
      outcome: 'retrying',
      status_code: 500,
      duration_ms: 20,
      next_attempt_at: '2026-03-10T12:00:27.000Z',
    },
  },
  {
    taskId: T.openai10s,
    seq: 11,
    type: 'webhook',
    ago: 2,
    data: {
      delivery_id: `msg_${T.openai10s}`,
      attempt: 2,
      outcome: 'delivered',
      status_code: 200,
      duration_ms: 15,
    },
  },
  // still retrying, the last attempt timed out
  {
    taskId: T.failed10m,
    seq: 10,
    type: 'webhook',
    ago: 590,
    data: {
      delivery_id: `msg_${T.failed10m}`,
      attempt: 1,
      outcome: 'retrying',
      status_code: 503,
      duration_ms: 30,
      next_attempt_at: '2026-03-10T11:51:00.000Z',
    },
  },
  {
    taskId: T.failed10m,
    seq: 11,
    type: 'webhook',
    ago: 30,
    data: {
      delivery_id: `msg_${T.failed10m}`,
      attempt: 2,
      outcome: 'retrying',
      error: 'timed out after 10000 ms',
      duration_ms: 10000,
      next_attempt_at: '2026-03-10T12:01:00.000Z',
    },
  },
  // the receiver answered 410: stopped
  {
    taskId: T.cancelled3m,
    seq: 10,
    type: 'webhook',
    ago: 120,
    data: {
      delivery_id: `msg_${T.cancelled3m}`,
      attempt: 1,
      outcome: 'gone',
      status_code: 410,
      duration_ms: 12,
    },
  },
  // gave up, but longer ago than the query looks
  {
    taskId: T.openai30h,
    seq: 10,
    type: 'webhook',
    ago: 29 * 3600,
    data: {
      delivery_id: `msg_${T.openai30h}`,
      attempt: 8,
      outcome: 'gave_up',
      status_code: 500,
      duration_ms: 25,
    },
  },
];

const WEBHOOK_URLS: Record<string, string> = {
  [T.openai10s]: 'https://a.example/hook',
  [T.failed10m]: 'https://b.example/hook',
  [T.cancelled3m]: 'https://c.example/hook',
  [T.openai30h]: 'https://d.example/hook',
};

let tdb: TestDatabase;
let client: pg.PoolClient;
let jobId: string;

const ago = (seconds: number | null | undefined) => (seconds == null ? null : `${seconds} seconds`);

beforeAll(async () => {
  tdb = await createTestDatabase();
  client = await tdb.pool.connect();
  await client.query(`SET TimeZone = 'UTC'`);
  await client.query(`CREATE SCHEMA runbook_clock`);
  await client.query(
    `CREATE FUNCTION runbook_clock.now() RETURNS timestamptz LANGUAGE sql IMMUTABLE
     AS $$ SELECT '${NOW}'::timestamptz $$`,
  );
  await client.query(`SET search_path = runbook_clock, pg_catalog, public`);
  await client.query(`SET session_replication_role = replica`);
  await client.query(`INSERT INTO agentq.workers (id, hostname, pid, version, concurrency, started_at, last_seen_at)
    VALUES ('pool-alive', 'host-a', 101, '0.1.0', 4, now() - interval '1 hour', now() - interval '2 seconds'),
           ('pool-stale', 'host-b', 202, '0.1.0', 2, now() - interval '1 hour', now() - interval '60 seconds')`);
  for (const t of TASKS) {
    const finished = t.status !== 'queued' && t.status !== 'running';
    const config = {
      ...(t.config ?? OPENAI),
      max_steps: 8,
      temperature: null,
      tools: [],
      system_prompt: '',
    };
    await client.query(
      `INSERT INTO agentq.tasks (id, type, status, input, config, error, usage, attempts,
         run_at, started_at, finished_at, worker_id, webhook_url, created_at)
       VALUES ($1, 'agent', $2, $3, $4, $5, $6, $7,
         now() - coalesce($8::interval, $9::interval, $10::interval), now() - $9::interval,
         now() - $10::interval, $11, $12,
         now() - coalesce($8::interval, $9::interval, $10::interval))`,
      [
        t.id,
        t.status,
        { prompt: `task ${t.id.slice(-2)}` },
        config,
        t.errorCode ? { code: t.errorCode, message: 'x', retryable: false } : null,
        finished ? SPENT : { input_tokens: 0, output_tokens: 0, llm_calls: 0, tool_calls: 0 },
        t.attempts ?? (t.status === 'queued' ? 0 : 1),
        ago(t.runAtAgo),
        ago(
          t.startedAgo ?? (finished && t.status !== 'cancelled' ? (t.finishedAgo ?? 0) + 1 : null),
        ),
        ago(t.finishedAgo),
        t.workerId ?? null,
        WEBHOOK_URLS[t.id] ?? null,
      ],
    );
  }
  // One late task still has its graphile-worker job (unlocked): the other lost it.
  const job = await client.query<{ id: string }>(
    `SELECT (graphile_worker.add_job('agent', json_build_object('task_id', $1::text),
       run_at := now() - interval '6 minutes')).id::text AS id`,
    [T.queuedLateWithJob],
  );
  jobId = job.rows[0]!.id;
  await client.query(`UPDATE agentq.tasks SET job_id = $1 WHERE id = $2`, [
    jobId,
    T.queuedLateWithJob,
  ]);
  for (const e of EVENTS) {
    await client.query(
      `INSERT INTO agentq.task_events (task_id, seq, type, data, created_at)
       VALUES ($1, $2, $3, $4, now() - $5::interval)`,
      [e.taskId, e.seq, e.type, e.data, `${e.ago} seconds`],
    );
  }
  await client.query(`SET session_replication_role = origin`);
});

afterAll(async () => {
  client?.release(true);
  await tdb?.drop();
});

/** Runs a block as psql would show it: every value as text, NULL as null. */
async function run(query: string): Promise<Array<Array<string | null>>> {
  const result = await client.query({
    text: query,
    rowMode: 'array',
    types: { getTypeParser: () => (value: string) => value },
  });
  return result.rows as Array<Array<string | null>>;
}

const at = (secondsAgo: number) =>
  new Date(Date.parse('2026-03-10T12:00:30Z') - secondsAgo * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.000Z$/, '+00');

/** Each block's exact result. */
const EXPECTED: Record<string, () => Array<Array<string | null>>> = {
  'stuck-running': () => [
    [T.runningGone, 'pool-gone', '1', at(600), null, 'no worker row'],
    [T.runningStale, 'pool-stale', '2', at(300), at(60), 'heartbeat stale'],
  ],
  'stuck-queued': () => [
    [T.queuedLate, '0', at(600), '00:10:00', null, null, null],
    [T.queuedLateWithJob, '0', at(360), '00:06:00', jobId, null, null],
  ],
  'failures-by-code': () => [
    ['provider_error', '2', at(600)],
    ['timeout', '1', at(1800)],
  ],
  'throughput-per-minute': () => {
    const busy: Record<string, [number, number, number]> = {
      '11:50': [0, 1, 0], // failed 10 min ago (11:50:30); 20 and 30 min ago are outside
      '11:55': [1, 0, 0],
      '11:57': [0, 0, 1],
      '11:59': [2, 0, 0], // 40 s and 60 s ago
      '12:00': [1, 0, 0], // 10 s ago, the current minute
    };
    return Array.from({ length: 15 }, (_, i) => {
      const minute = `${46 + i >= 60 ? '12' : '11'}:${String((46 + i) % 60).padStart(2, '0')}`;
      const [c, f, x] = busy[minute] ?? [0, 0, 0];
      return [`2026-03-10 ${minute}:00+00`, String(c), String(f), String(x)];
    });
  },
  // openai 1, 2, 3, 4, 10 s: p50 3, p95 4 + 0.8 × 6 = 8.8; google 2, 6 s: p50 4, p95 2 + 0.95 × 4 = 5.8
  'duration-by-model': () => [
    ['google', 'gemini-2.0-flash', '2', '4.000', '5.800'],
    ['openai', 'gpt-4o-mini', '5', '3.000', '8.800'],
  ],
  // 8 days ago is outside; 20 h and 30 h ago are 2026-03-09; every finished task spent SPENT
  'tokens-by-day': () => [
    ['2026-03-09', 'google', 'gemini-2.0-flash', '1', '100', '10', '2'],
    ['2026-03-09', 'openai', 'gpt-4o-mini', '1', '100', '10', '2'],
    ['2026-03-10', 'google', 'gemini-2.0-flash', '2', '200', '20', '4'],
    ['2026-03-10', 'openai', 'gpt-4o-mini', '9', '900', '90', '18'],
  ],
  'worker-load': () => [
    ['pool-alive', 'host-a', '101', '4', 't', '1', `{${T.runningAlive}}`],
    ['pool-stale', 'host-b', '202', '2', 'f', '1', `{${T.runningStale}}`],
  ],
  'running-now': () => [
    ['pool-alive', T.runningAlive, 'gpt-4o-mini', '1', '00:00:30', 'task 01'],
    ['pool-gone', T.runningGone, 'gpt-4o-mini', '1', '00:10:00', 'task 03'],
    ['pool-stale', T.runningStale, 'gpt-4o-mini', '2', '00:05:00', 'task 02'],
  ],
  // the 9999 ms call was two hours ago
  'slowest-tool-calls': () => [
    ['http_get', '3000', 't', T.openai40s, '3', at(300)],
    ['http_get', '1200', 'f', T.openai10s, '3', at(60)],
    ['http_get', '400', 'f', T.openai5m, '3', at(600)],
    ['calculator', '5', 'f', T.openai10s, '5', at(50)],
  ],
  // http_get 400, 1200, 3000: p50 1200, p95 1200 + 0.9 × 1800 = 2820
  'tool-durations': () => [
    ['http_get', '3', '1', '1200', '2820', '3000'],
    ['calculator', '1', '0', '5', '5', '5'],
  ],
  'webhooks-failing': () => [
    [
      T.failed10m,
      'https://b.example/hook',
      'retrying',
      '2',
      null,
      'timed out after 10000 ms',
      '2026-03-10T12:01:00.000Z',
      at(30),
    ],
    [T.cancelled3m, 'https://c.example/hook', 'gone', '1', '410', null, null, at(120)],
  ],
  'webhook-outcomes': () => [
    ['delivered', '200', '1'],
    ['gone', '410', '1'],
    ['retrying', '500', '1'],
    ['retrying', '503', '1'],
    ['retrying', null, '1'],
  ],
  // Every row is from 1970 (ids of time 0), in the history partition, which
  // ends at the day before the migration ran: not whole past the horizon.
  'retention-plan': () => [['agentq.tasks_history', 'delete', '14']], // the 14 finished rows
};

describe('docs/sql.md', () => {
  const blocks = runbookBlocks();

  it('has a checked result for every sql block, and no check without a block', () => {
    expect([...blocks.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('runs on the pinned clock', async () => {
    expect(await run(`SELECT now()`)).toEqual([[NOW]]);
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name} answers as documented`, async () => {
      const query = blocks.get(name);
      expect(query, `docs/sql.md has no block named ${name}`).toBeDefined();
      expect(await run(query!)).toEqual(expected());
    });
  }
});

describe('npm run psql', () => {
  it('uses DATABASE_URL when set', () => {
    expect(resolvePsqlUrl({ DATABASE_URL: 'postgres://u:p@db:5432/x' })).toEqual({
      url: 'postgres://u:p@db:5432/x',
    });
  });

  it('finds the running embedded Postgres of AGENTQ_DATA_DIR through its postmaster.pid', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'agentq-psql-'));
    try {
      expect(resolvePsqlUrl({ AGENTQ_DATA_DIR: dir })).toEqual({
        problem: expect.stringContaining('no database is running') as string,
      });
      await mkdir(path.join(dir, 'pg'));
      // This process stands in for the postmaster: alive, so the file is current.
      const pidFile = [
        process.pid,
        path.join(dir, 'pg'),
        '1700000000',
        '54331',
        '/tmp',
        '127.0.0.1',
      ];
      await writeFile(path.join(dir, 'pg', 'postmaster.pid'), pidFile.join('\n') + '\n');
      expect(resolvePsqlUrl({ AGENTQ_DATA_DIR: dir })).toEqual({
        url: 'postgres://postgres:postgres@127.0.0.1:54331/postgres',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
