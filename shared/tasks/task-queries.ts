/**
 * The statements the API makes on task rows: submit (rows and their jobs in
 * one statement), read, list, cancel. Status changes are single statements
 * with their guard in the WHERE clause; the database trigger (migrations/0002)
 * refuses any edge the status machine lacks and writes the `status` event.
 * The worker's statements are in attempt-queries.ts, the step log's in
 * event-queries.ts.
 */
import {
  CompiledQuery,
  sql,
  type ExpressionBuilder,
  type ExpressionWrapper,
  type SqlBool,
  type Transaction,
} from 'kysely';
import type { Db } from '../db/database.ts';
import type { AgentConfig, Database } from '../db/schema.ts';
import { ensurePartitions } from '../db/partitions.ts';
import { CANCELLED_ERROR } from './task-error.ts';
import { taskFilterWhere, type TaskFilter } from './task-filter.ts';
import { selectSummary } from './task-summary.ts';

export type TaskRow = Awaited<ReturnType<typeof taskFindById>> & {};

export interface NewTask {
  id: string;
  type: 'agent';
  input: { prompt: string };
  config: AgentConfig;
  maxAttempts: number;
  priority: number;
  timeoutMs: number;
  runAt: Date | null;
  metadata: Record<string, unknown>;
  idempotencyKey: string | null;
  requestHash: string | null;
  /** Where the terminal status is POSTed; its job is enqueued by a trigger (migrations/0006). */
  webhookUrl?: string | null;
  /**
   * The submit request's W3C trace context (`traceparent`, `tracestate`), so
   * the worker's spans join the submit's trace; null or absent when not traced.
   */
  traceContext?: Record<string, string> | null;
}

/** graphile-worker runs lower priority numbers first; ours run higher first. */
export const jobPriority = (priority: number) => -priority;

// A job's own attempts only count crashes and thrown handlers; the task's
// max_attempts governs retries, so the job gets a generous cap of its own.
const JOB_MAX_ATTEMPTS = 25;

/**
 * Adds the task's next graphile-worker job and points the task at it. Every
 * requeue gets a NEW job: graphile-worker deletes a job by id when a handler
 * returns, even one that was unlocked and handed to another worker meanwhile,
 * so a presumed-dead worker finishing late must never hold the task's only job.
 */
export async function addAgentJob(
  trx: Transaction<Database>,
  taskId: string,
  runAt: Date | null,
  priority: number,
) {
  const { rows } = await sql<{ id: number }>`
    SELECT (graphile_worker.add_job(
      'agent',
      json_build_object('task_id', ${taskId}::uuid),
      run_at := coalesce(${runAt}::timestamptz, now()),
      max_attempts := ${JOB_MAX_ATTEMPTS}::int,
      priority := ${jobPriority(priority)}::int
    )).id AS id`.execute(trx);
  const jobId = rows[0]!.id;
  await trx.updateTable('agentq.tasks').set({ job_id: jobId }).where('id', '=', taskId).execute();
  return jobId;
}

/** What became of one submitted task. */
export type SubmitOutcome =
  /** Inserted now, with its job. */
  | { kind: 'created'; task: TaskRow }
  /** Its idempotency key was already used with the same request: the original task. */
  | { kind: 'replayed'; task: TaskRow }
  /** Its idempotency key was already used with another request: that task. */
  | { kind: 'conflict'; task: TaskRow };

export type SubmitManyResult =
  | { kind: 'submitted'; outcomes: Array<Extract<SubmitOutcome, { kind: 'created' | 'replayed' }>> }
  /**
   * Nothing was written: item `index` reuses an idempotency key with another
   * request, either a stored task's (`task`) or an earlier item's in the same
   * request (`earlierIndex`).
   */
  | { kind: 'conflict'; index: number; task?: TaskRow; earlierIndex?: number };

/**
 * The submit, as ONE statement (one round trip; one commit when run alone):
 * the tasks already holding an item's idempotency key are looked up, the rest
 * get their jobs from one graphile_worker.add_jobs call and are inserted
 * pointing at them. The job is added before the row that names it, but both
 * commit together (or neither does), so no worker ever sees a job without its
 * task. If any key is held by a different request, nothing is written at all.
 * A concurrent submit taking the same key between our look-up and our insert
 * makes the insert fail (unique violation) and the whole statement roll back,
 * job included; the caller retries and then finds the key taken.
 *
 * Rows come back in request order (`ord`); `outcome` is created, replayed or
 * conflict. The plain INSERT (no ON CONFLICT) is deliberate: DO NOTHING would
 * leave the job already added for a row that was not inserted.
 */
const SUBMIT_SQL = `
WITH items AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS i(
    ord int, id uuid, type text, input jsonb, config jsonb, max_attempts int, priority int,
    timeout_ms int, metadata jsonb, idempotency_key text, request_hash text, webhook_url text, trace_context jsonb)
  -- run_at travels beside the JSON, as timestamps pg serialises itself (years
  -- 0 and 10000 included, which ISO strings in JSON would not survive).
  CROSS JOIN LATERAL (SELECT ($3::timestamptz[])[i.ord + 1] AS run_at) r
),
held AS (
  -- = ANY(ARRAY(...)) keeps this an index look-up however many keys are stored.
  SELECT k.key, k.task_id FROM agentq.idempotency_keys k
  WHERE k.key = ANY (ARRAY(
    SELECT idempotency_key FROM items WHERE idempotency_key IS NOT NULL))
),
taken AS (
  -- The same for the holders: one primary-key look-up in each day's partition.
  SELECT i.ord, t.id, t.request_hash IS NOT DISTINCT FROM i.request_hash AS same
  FROM held
  JOIN items i ON i.idempotency_key = held.key
  JOIN agentq.tasks t ON t.id = held.task_id
  WHERE t.id = ANY (ARRAY(SELECT task_id FROM held))
),
fresh AS (
  SELECT i.* FROM items i
  WHERE NOT EXISTS (SELECT 1 FROM taken WHERE taken.ord = i.ord)
    AND NOT EXISTS (SELECT 1 FROM taken WHERE NOT taken.same)
),
specs AS (
  SELECT ARRAY(
    SELECT ROW('agent', json_build_object('task_id', f.id), NULL::text,
               coalesce(f.run_at, now()), $2::smallint, NULL::text, (-f.priority)::smallint,
               NULL::text[])::graphile_worker.job_spec
    FROM fresh f ORDER BY f.ord) AS specs
  OFFSET 0
),
jobs AS (
  -- Never called with an empty array: that would still send jobs:insert.
  SELECT (j.payload->>'task_id')::uuid AS task_id, j.id
  FROM specs CROSS JOIN LATERAL graphile_worker.add_jobs(specs.specs) j
  WHERE cardinality(specs.specs) > 0
),
created AS (
  INSERT INTO agentq.tasks (id, type, input, config, max_attempts, priority, timeout_ms,
                            run_at, metadata, idempotency_key, request_hash, webhook_url,
                            trace_context, job_id)
  SELECT f.id, f.type, f.input, f.config, f.max_attempts, f.priority, f.timeout_ms,
         coalesce(f.run_at, now()), f.metadata, f.idempotency_key, f.request_hash,
         f.webhook_url, f.trace_context, jobs.id
  FROM fresh f JOIN jobs ON jobs.task_id = f.id
  -- One order for every submit, so two batches sharing keys cannot deadlock.
  ORDER BY f.idempotency_key NULLS LAST, f.ord
  RETURNING *
),
keys AS (
  -- The keys' own table holds their uniqueness (migrations/0008); inserted in
  -- key order, so two batches sharing keys cannot deadlock.
  INSERT INTO agentq.idempotency_keys (key, task_id)
  SELECT f.idempotency_key, f.id
  FROM fresh f JOIN jobs ON jobs.task_id = f.id
  WHERE f.idempotency_key IS NOT NULL
  ORDER BY f.idempotency_key
)
SELECT i.ord, 'created' AS outcome, c.* FROM created c JOIN items i ON i.id = c.id
UNION ALL
SELECT taken.ord, CASE WHEN taken.same THEN 'replayed' ELSE 'conflict' END, t.*
FROM agentq.tasks t JOIN taken ON taken.id = t.id
WHERE t.id = ANY (ARRAY(SELECT id FROM taken))
ORDER BY 1`;

// A racing submit took one of our keys (unique_violation on the key), or two
// batches sharing keys locked each other (deadlock_detected, should the
// insert order ever stop preventing it): the statement rolled back whole; run
// it again, and it finds the keys taken.
const SUBMIT_TRIES = 5;
const isRetryable = (err: unknown) => {
  const { code, constraint } = err as { code?: unknown; constraint?: unknown };
  return (code === '23505' && constraint === 'idempotency_keys_pkey') || code === '40P01';
};

// No partition holds the new id (the partitions made ahead ran out: no worker
// has run for two weeks, or this host's clock is far from the database's).
const isMissingPartition = (err: unknown) => {
  const { code, message } = err as { code?: unknown; message?: unknown };
  return (
    code === '23514' && typeof message === 'string' && /no partition of relation/.test(message)
  );
};

/**
 * Submits `tasks` (request order) in one statement; see SUBMIT_SQL. Two items
 * with the same idempotency key are one task if their requests match, and a
 * conflict otherwise, as they would be in two submits.
 */
export async function taskInsertManyWithJobs(
  db: Db,
  tasks: readonly NewTask[],
): Promise<SubmitManyResult> {
  // The first item with each key goes to the database; later ones follow it.
  const firstWithKey = new Map<string, number>();
  const sameAs: Array<number | undefined> = [];
  const items: unknown[] = [];
  for (const [ord, t] of tasks.entries()) {
    const first = t.idempotencyKey === null ? undefined : firstWithKey.get(t.idempotencyKey);
    sameAs.push(first);
    if (first !== undefined) {
      // Refused before anything is written, as a second submit would be.
      if (tasks[first]!.requestHash !== t.requestHash)
        return { kind: 'conflict', index: ord, earlierIndex: first };
      continue;
    }
    if (t.idempotencyKey !== null) firstWithKey.set(t.idempotencyKey, ord);
    items.push({
      ord,
      id: t.id,
      type: t.type,
      input: t.input,
      config: t.config,
      max_attempts: t.maxAttempts,
      priority: t.priority,
      timeout_ms: t.timeoutMs,
      metadata: t.metadata,
      idempotency_key: t.idempotencyKey,
      request_hash: t.requestHash,
      webhook_url: t.webhookUrl ?? null,
      trace_context: t.traceContext ?? null,
    });
  }
  const runAts = tasks.map((t) => t.runAt);
  const rows = await runSubmit(db, [JSON.stringify(items), JOB_MAX_ATTEMPTS, runAts]);
  const conflict = rows.find((r) => r.outcome === 'conflict');
  if (conflict) return { kind: 'conflict', index: conflict.ord, task: stripOrd(conflict) };
  const byOrd = new Map(rows.map((r) => [r.ord, r]));
  return {
    kind: 'submitted',
    outcomes: tasks.map((_, i) => {
      const first = sameAs[i];
      const row = byOrd.get(first ?? i);
      if (!row) throw new Error(`submit: no row for item ${i}`);
      const kind = first === undefined && row.outcome === 'created' ? 'created' : 'replayed';
      return { kind, task: stripOrd(row) };
    }),
  };
}

/** One task; see taskInsertManyWithJobs. */
export async function taskSubmit(db: Db, task: NewTask): Promise<SubmitOutcome> {
  const result = await taskInsertManyWithJobs(db, [task]);
  if (result.kind === 'submitted') return result.outcomes[0]!;
  return { kind: 'conflict', task: result.task! };
}

/**
 * Inserts the task and its graphile-worker job in one statement: both commit
 * or neither does. Returns undefined when the idempotency key is taken.
 */
export async function taskInsertWithJob(db: Db, task: NewTask): Promise<TaskRow | undefined> {
  const outcome = await taskSubmit(db, task);
  return outcome.kind === 'created' ? outcome.task : undefined;
}

type SubmitRow = TaskRow & { ord: number; outcome: 'created' | 'replayed' | 'conflict' };

function stripOrd({ ord: _ord, outcome: _outcome, ...task }: SubmitRow): TaskRow {
  return task;
}

async function runSubmit(db: Db, parameters: unknown[]): Promise<SubmitRow[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await db.executeQuery<SubmitRow>(CompiledQuery.raw(SUBMIT_SQL, parameters));
      return rows;
    } catch (err) {
      if (attempt >= SUBMIT_TRIES) throw err;
      if (isMissingPartition(err)) await ensurePartitions(db);
      else if (!isRetryable(err)) throw err;
    }
  }
}

export async function taskFindById(db: Db, id: string) {
  return db.selectFrom('agentq.tasks').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function taskFindByIdempotencyKey(db: Db, key: string) {
  const held = db.selectFrom('agentq.idempotency_keys').select('task_id').where('key', '=', key);
  return db.selectFrom('agentq.tasks').selectAll().where('id', '=', held).executeTakeFirst();
}

export interface TaskListFilter extends TaskFilter {
  /** Return tasks older than this id (ids are time-ordered UUIDv7). */
  beforeId?: string;
  limit: number;
}

/** A page, newest first: one extra row is read so the caller knows whether a next page exists. */
function taskListQuery(db: Db, filter: TaskListFilter) {
  let query = db
    .selectFrom('agentq.tasks')
    .where(taskFilterWhere(filter))
    .orderBy('id', 'desc')
    .limit(filter.limit + 1);
  if (filter.beforeId) query = query.where('id', '<', filter.beforeId);
  return query;
}

const pageOf = <T>(rows: T[], limit: number) => ({
  rows: rows.slice(0, limit),
  hasMore: rows.length > limit,
});

/** Newest first, whole tasks. */
export async function taskList(db: Db, filter: TaskListFilter) {
  return pageOf(await taskListQuery(db, filter).selectAll().execute(), filter.limit);
}

/** Newest first, in the summary view (long prompts and answers cut in SQL). */
export async function taskListSummary(db: Db, filter: TaskListFilter) {
  return pageOf(await selectSummary(taskListQuery(db, filter)).execute(), filter.limit);
}

/** The tasks among `ids` that match `filter`, in the summary view, oldest first. */
export async function taskSummariesByIds(db: Db, ids: readonly string[], filter: TaskFilter) {
  if (ids.length === 0) return [];
  return selectSummary(
    db
      .selectFrom('agentq.tasks')
      .where('id', '=', sql<string>`ANY(${[...ids]}::uuid[])`)
      .where(taskFilterWhere(filter))
      .orderBy('id'),
  ).execute();
}

/** A condition on agentq.tasks: one id (the single cancel) or a filter's matches (the bulk cancel). */
type TaskWhere = (
  eb: ExpressionBuilder<Database, 'agentq.tasks'>,
) => ExpressionWrapper<Database, 'agentq.tasks', SqlBool>;

/** queued → cancelled for the queued tasks `where` picks, removing their (unlocked) jobs. */
async function cancelQueuedWhere(trx: Transaction<Database>, where: TaskWhere) {
  const rows = await trx
    .updateTable('agentq.tasks')
    .set({
      status: 'cancelled',
      cancel_requested_at: sql`now()`,
      error: JSON.stringify(CANCELLED_ERROR),
    })
    .where(where)
    .where('status', '=', 'queued')
    .returningAll()
    .execute();
  const jobIds = rows.flatMap((r) => (r.job_id == null ? [] : [r.job_id]));
  if (jobIds.length > 0)
    await sql`SELECT graphile_worker.complete_jobs(${jobIds}::bigint[])`.execute(trx);
  return rows;
}

/**
 * For the running tasks `where` picks: records the request (the first time
 * only) and, for each first request, appends a `cancel_requested` event and
 * wakes its worker (NOTIFY agentq_cancel, ids comma-separated, 200 a payload
 * to stay under Postgres's 8,000-byte limit). Returns every running task
 * picked, with whether this was its first request.
 */
async function requestCancelWhere(trx: Transaction<Database>, where: TaskWhere) {
  const rows = await trx
    .updateTable('agentq.tasks')
    .set({ cancel_requested_at: sql`coalesce(cancel_requested_at, now())` })
    .where(where)
    .where('status', '=', 'running')
    .returning(['id', sql<boolean>`(cancel_requested_at = now())`.as('first')])
    .execute();
  const first = rows.filter((r) => r.first).map((r) => r.id);
  if (first.length > 0) {
    await sql`
      WITH t AS (
        UPDATE agentq.tasks SET last_event_seq = last_event_seq + 1
        WHERE id = ANY(${first}::uuid[])
        RETURNING id, last_event_seq
      ), events AS (
        INSERT INTO agentq.task_events (task_id, seq, type, data)
        SELECT id, last_event_seq, 'cancel_requested', '{}'::jsonb FROM t
      )
      SELECT pg_notify('agentq_cancel', string_agg(id::text, ',' ORDER BY id))
      FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / 200 AS part FROM t) parts
      GROUP BY part`.execute(trx);
  }
  return rows;
}

/** queued → cancelled, removing its (unlocked) job in the same transaction. */
export async function taskCancelQueued(db: Db, id: string) {
  return db.transaction().execute(async (trx) => {
    const rows = await cancelQueuedWhere(trx, (eb) => eb('id', '=', id));
    return rows[0];
  });
}

/**
 * A running task: records the request and wakes its worker (NOTIFY
 * agentq_cancel). The worker aborts and writes `cancelled`. Idempotent: a
 * second request keeps the first time and sends no second event.
 */
export async function taskRequestCancel(db: Db, id: string) {
  return db.transaction().execute(async (trx) => {
    const rows = await requestCancelWhere(trx, (eb) => eb('id', '=', id));
    return rows.length === 0 ? undefined : taskFindById(trx, id);
  });
}

export type BulkCancelOutcome =
  | { kind: 'count_changed'; matched: number }
  | { kind: 'dry_run'; matched: number }
  | { kind: 'done'; matched: number; cancelled: number; cancelRequested: number; hasMore: boolean };

/**
 * Cancels the queued and running tasks matching `filter`, as the single
 * cancel does each (the same statements), in one transaction: at most
 * `limit` tasks per call, the oldest first; `hasMore` says whether matches
 * were left. `expectedCount`, when given, must equal the number of matches,
 * else nothing changes.
 */
export async function taskCancelMatching(
  db: Db,
  filter: TaskFilter,
  options: { limit: number; dryRun: boolean; expectedCount?: number },
): Promise<BulkCancelOutcome> {
  return db.transaction().execute(async (trx) => {
    const active = (statuses: Array<'queued' | 'running'>) =>
      trx.selectFrom('agentq.tasks').where('status', 'in', statuses).where(taskFilterWhere(filter));
    const { matched } = await active(['queued', 'running'])
      .select((eb) => eb.fn.countAll<number>().as('matched'))
      .executeTakeFirstOrThrow();
    if (options.expectedCount !== undefined && options.expectedCount !== matched)
      return { kind: 'count_changed', matched };
    if (options.dryRun) return { kind: 'dry_run', matched };
    const oldest =
      (status: 'queued' | 'running', limit: number) =>
      (eb: ExpressionBuilder<Database, 'agentq.tasks'>) =>
        eb('id', 'in', active([status]).select('id').orderBy('id').limit(limit));
    const cancelled = await cancelQueuedWhere(trx, oldest('queued', options.limit));
    const requested = await requestCancelWhere(
      trx,
      oldest('running', options.limit - cancelled.length),
    );
    return {
      kind: 'done',
      matched,
      cancelled: cancelled.length,
      cancelRequested: requested.length,
      hasMore: matched > cancelled.length + requested.length,
    };
  });
}
