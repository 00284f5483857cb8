/**
 * The worker's writes for many attempts at once: claims, step events and
 * outcomes, each kind one statement over a JSON array, so one flush of the
 * worker's AttemptWriter is one transaction whatever the number of tasks in
 * it. Every write is fenced per task inside the statement (status = 'running'
 * and the claim the attempt holds), exactly like the single-task statements
 * in attempt-queries.ts.
 */
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Database, EventType, TaskStatus, TaskUsage } from '../db/schema.ts';
import { toStorableJson } from './storable-json.ts';
import type { Outcome } from './attempt-queries.ts';
import { CANCELLED_ERROR } from './task-error.ts';
import type { TaskRow } from './task-queries.ts';

// A transaction when a flush writes several kinds; the pool when one statement is all.
type Trx = Db | Transaction<Database>;

export interface ClaimRequest {
  taskId: string;
  jobId: number;
}

/**
 * queued → running for every task whose job is the one running it; a new
 * claim number and a counted attempt each. Tasks not returned were not
 * claimable (stale job, no longer queued): the caller looks at each.
 */
export async function taskClaimMany(trx: Trx, workerId: string, claims: ClaimRequest[]) {
  const { rows } = await sql<TaskRow>`
    UPDATE agentq.tasks t
    SET status = 'running', attempts = t.attempts + 1, claim = t.claim + 1,
        worker_id = ${workerId}, error = NULL
    FROM jsonb_to_recordset(${JSON.stringify(claims.map((c) => ({ id: c.taskId, job_id: c.jobId })))}::jsonb)
      AS c(id uuid, job_id bigint)
    WHERE t.id = c.id AND t.status = 'queued' AND t.job_id = c.job_id
    RETURNING t.*`.execute(trx);
  return rows;
}

export interface EventRequest {
  taskId: string;
  claim: number;
  type: EventType;
  data: Record<string, unknown>;
}

export interface UsageRequest {
  taskId: string;
  claim: number;
  usage: TaskUsage;
}

/**
 * Appends the events in order, numbering each task's run of events from its
 * row in ONE update per task (not one per event): the row lock that update
 * takes orders these appends against every other writer of the task's step
 * log, and its WHERE is the fence. Saves each task's latest usage on the way.
 * Returns the tasks whose events were written, with their cancel flag; a
 * task missing from the answer has been fenced out.
 */
export async function eventAppendMany(
  trx: Trx,
  events: EventRequest[],
  usage: UsageRequest[],
  /** Commit without waiting for the WAL flush (see event-queries.ts); only when nothing else is in the transaction. */
  asyncCommit = false,
) {
  const ord = new Map<string, number>();
  const items = events.map((e) => {
    const n = (ord.get(e.taskId) ?? 0) + 1;
    ord.set(e.taskId, n);
    return { task_id: e.taskId, claim: e.claim, ord: n, type: e.type, data: e.data };
  });
  const tasks = new Map<string, { task_id: string; claim: number; n: number; usage: unknown }>();
  for (const e of events)
    tasks.set(e.taskId, { task_id: e.taskId, claim: e.claim, n: ord.get(e.taskId)!, usage: null });
  for (const u of usage) {
    const t = tasks.get(u.taskId) ?? { task_id: u.taskId, claim: u.claim, n: 0, usage: null };
    t.usage = u.usage;
    tasks.set(u.taskId, t);
  }
  const { rows } = await sql<{ id: string; claim: number; cancel_requested: boolean }>`
    WITH n AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify([...tasks.values()])}::jsonb)
        AS n(task_id uuid, claim int, n int, usage jsonb)
    ), t AS (
      UPDATE agentq.tasks t
      SET last_event_seq = t.last_event_seq + n.n, usage = coalesce(n.usage, t.usage)
      FROM n
      WHERE t.id = n.task_id AND t.claim = n.claim AND t.status = 'running'
      RETURNING t.id, t.claim, t.last_event_seq - n.n AS base, t.cancel_requested_at IS NOT NULL AS cancel_requested
    ), ins AS (
      INSERT INTO agentq.task_events (task_id, seq, type, data)
      SELECT x.task_id, t.base + x.ord, x.type, x.data
      FROM jsonb_to_recordset(${toStorableJson(items)}::jsonb)
        AS x(task_id uuid, claim int, ord int, type text, data jsonb)
      JOIN t ON t.id = x.task_id
      RETURNING 1
    )
    SELECT id, claim, cancel_requested
      ${asyncCommit ? sql`, set_config('synchronous_commit', 'off', true) AS async_commit` : sql``}
    FROM t`.execute(trx);
  return rows;
}

export interface FinishRequest {
  taskId: string;
  claim: number;
  outcome: Outcome;
  usage: TaskUsage;
}

/**
 * running → completed | failed | cancelled for each attempt still holding its
 * claim; a failure that would have been retried ends `cancelled` instead when
 * cancellation was requested (as taskFinish does). Returns the status written
 * per task; a task missing from the answer was fenced out.
 */
export async function taskFinishMany(trx: Trx, finishes: FinishRequest[]) {
  const items = finishes.map((f) => {
    const o = f.outcome;
    return {
      task_id: f.taskId,
      claim: f.claim,
      status: o.status,
      cancel_wins: o.status === 'failed' && (o.cancelWins ?? o.error.retryable),
      result: o.status === 'completed' ? o.result : null,
      error: o.status === 'completed' ? null : o.error,
      usage: f.usage,
    };
  });
  const { rows } = await sql<{ id: string; status: TaskStatus }>`
    UPDATE agentq.tasks t
    SET status = CASE WHEN f.cancel_wins AND t.cancel_requested_at IS NOT NULL
                      THEN 'cancelled' ELSE f.status END,
        result = f.result,
        error = CASE WHEN f.cancel_wins AND t.cancel_requested_at IS NOT NULL
                     THEN ${JSON.stringify(CANCELLED_ERROR)}::jsonb ELSE f.error END,
        usage = f.usage
    FROM jsonb_to_recordset(${toStorableJson(items)}::jsonb)
      AS f(task_id uuid, claim int, status text, cancel_wins boolean, result jsonb, error jsonb,
           usage jsonb)
    WHERE t.id = f.task_id AND t.claim = f.claim AND t.status = 'running'
    RETURNING t.id, t.status`.execute(trx);
  return new Map(rows.map((r) => [r.id, r.status]));
}
