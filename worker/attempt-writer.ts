/**
 * One writer per worker process for what every running attempt wants to
 * write: claims, step events (with the usage so far) and outcomes. Writes
 * queue up while a flush is in flight and go together in the next one: one
 * transaction, one statement per kind, one commit, whatever the number of
 * tasks (shared/tasks/batch-queries.ts). At low load a flush carries one
 * write and starts at once; under load the batches grow by themselves, the
 * way a group commit does, with no timer to tune.
 *
 * Step events are not awaited by the agent loop: `append` queues them and
 * returns. What a flush learns about an attempt (fenced out, cancellation
 * requested, its writes failed) reaches the attempt through `onSignal`, which
 * aborts it. Claims and outcomes are awaited and committed synchronously;
 * event-only flushes commit asynchronously (a Postgres crash can lose only
 * the latest steps of attempts that are then recovered anyway).
 *
 * A flush that fails on a statement error (not a dropped connection) is split
 * per task and retried, so one bad write cannot fail its neighbours' writes.
 */
import type { Db } from '../shared/db/database.ts';
import type { EventType, TaskStatus, TaskUsage } from '../shared/db/schema.ts';
import type { Logger } from '../shared/logger.ts';
import type { Outcome } from '../shared/tasks/attempt-queries.ts';
import {
  eventAppendMany,
  taskClaimMany,
  taskFinishMany,
  type EventRequest,
  type FinishRequest,
} from '../shared/tasks/batch-queries.ts';
import type { TaskRow } from '../shared/tasks/task-queries.ts';
import { withDbRetry } from './with-db-retry.ts';

/** The claim an attempt holds: every write it makes is fenced on it. */
export interface AttemptClaim {
  taskId: string;
  claim: number;
}

export type AttemptSignal = 'fenced' | 'cancel' | 'write_failed';

export interface AttemptWriterDeps {
  db: Db;
  logger: Logger;
  /** The graphile-worker pool id of this process. */
  workerId: () => string;
  /** Called when a flush learns something the attempt must act on. */
  onSignal: (taskId: string, signal: AttemptSignal) => void;
  /** Most writes in one flush; the rest wait for the next. Default 500. */
  maxBatch?: number;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

interface PendingClaim extends Waiter<TaskRow | undefined> {
  taskId: string;
  jobId: number;
}
interface PendingFinish extends Waiter<TaskStatus | undefined>, FinishRequest {}
interface PendingEvent extends EventRequest {
  usage?: TaskUsage;
}

interface Batch {
  claims: PendingClaim[];
  events: PendingEvent[];
  finishes: PendingFinish[];
  /** Resolved when this batch's events are committed (or given up on). */
  settled: Waiter<void>[];
}

const emptyBatch = (): Batch => ({ claims: [], events: [], finishes: [], settled: [] });
const batchSize = (b: Batch) => b.claims.length + b.events.length + b.finishes.length;

export class AttemptWriter {
  private pending: Batch = emptyBatch();
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private readonly maxBatch: number;
  /** Statistics for logs and the bench: flushes and writes carried. */
  readonly stats = { flushes: 0, writes: 0 };

  constructor(private readonly deps: AttemptWriterDeps) {
    this.maxBatch = deps.maxBatch ?? 500;
  }

  /** queued → running under a new claim; undefined when the task is not claimable by this job. */
  claim(taskId: string, jobId: number): Promise<TaskRow | undefined> {
    return new Promise((resolve, reject) => {
      this.pending.claims.push({ taskId, jobId, resolve, reject });
      this.schedule();
    });
  }

  /** Queues one step event (and optionally the usage so far); never waits for the database. */
  append(
    attempt: AttemptClaim,
    type: EventType,
    data: Record<string, unknown>,
    usage?: TaskUsage,
  ): void {
    this.pending.events.push({ ...attempt, type, data, usage });
    this.schedule();
  }

  /** Writes the outcome after every event queued before it: the status written, or undefined when fenced out. */
  finish(
    attempt: AttemptClaim,
    outcome: Outcome,
    usage: TaskUsage,
  ): Promise<TaskStatus | undefined> {
    return new Promise((resolve, reject) => {
      this.pending.finishes.push({ ...attempt, outcome, usage, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once everything queued so far is committed (or given up on). */
  settle(): Promise<void> {
    if (batchSize(this.pending) === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.settled.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    // setImmediate, not a timer: writes made in the same turn of the event
    // loop go together, and nothing waits on a clock.
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flushLoop().finally(() => {
        this.flushing = undefined;
        if (batchSize(this.pending) > 0 || this.pending.settled.length > 0) this.schedule();
      });
    });
  }

  private async flushLoop(): Promise<void> {
    while (batchSize(this.pending) > 0 || this.pending.settled.length > 0) {
      const batch = this.take();
      await this.flush(batch);
    }
  }

  /** Takes up to maxBatch writes off the queue, keeping each task's writes in order. */
  private take(): Batch {
    const all = this.pending;
    if (batchSize(all) <= this.maxBatch) {
      this.pending = emptyBatch();
      return all;
    }
    // Claims first (new work waits on them), then events and outcomes in
    // arrival order; an outcome never goes before its own task's events.
    const batch = emptyBatch();
    let room = this.maxBatch;
    batch.claims = all.claims.splice(0, room);
    room -= batch.claims.length;
    batch.events = all.events.splice(0, Math.max(room, 0));
    room -= batch.events.length;
    const leftBehind = new Set(all.events.map((e) => e.taskId));
    const keep: PendingFinish[] = [];
    for (const f of all.finishes) {
      if (room > 0 && !leftBehind.has(f.taskId)) {
        batch.finishes.push(f);
        room--;
      } else keep.push(f);
    }
    all.finishes = keep;
    return batch;
  }

  private async flush(batch: Batch): Promise<void> {
    try {
      await withDbRetry(() => this.write(batch));
    } catch (err) {
      const tasks = new Set([
        ...batch.claims.map((c) => c.taskId),
        ...batch.events.map((e) => e.taskId),
        ...batch.finishes.map((f) => f.taskId),
      ]);
      if (tasks.size > 1) {
        // Isolate the write that failed: each task's writes on their own.
        this.deps.logger.warn(
          { err, tasks: tasks.size },
          'batched write failed; retrying per task',
        );
        for (const taskId of tasks) await this.flush(subBatch(batch, taskId));
        for (const s of batch.settled) s.resolve();
        return;
      }
      this.deps.logger.error({ err, taskId: [...tasks][0] }, 'write failed');
      for (const c of batch.claims) c.reject(err);
      for (const f of batch.finishes) f.reject(err);
      for (const taskId of new Set(batch.events.map((e) => e.taskId)))
        this.deps.onSignal(taskId, 'write_failed');
      for (const s of batch.settled) s.resolve();
    }
  }

  private async write(batch: Batch): Promise<void> {
    const { claims, events, finishes } = batch;
    const usage = latestUsage(events);
    const hasEvents = events.length > 0 || usage.length > 0;
    const run = async (db: Parameters<typeof taskClaimMany>[0]) => {
      const claimed =
        claims.length > 0 ? await taskClaimMany(db, this.deps.workerId(), claims) : [];
      // Events alone commit asynchronously; with a claim or an outcome, synchronously.
      const eventsOnly = claims.length === 0 && finishes.length === 0;
      const live = hasEvents ? await eventAppendMany(db, events, usage, eventsOnly) : [];
      const finished =
        finishes.length > 0 ? await taskFinishMany(db, finishes) : new Map<string, TaskStatus>();
      return { claimed, live, finished };
    };
    // One kind of write is one statement, committed on its own: no BEGIN and
    // COMMIT round trips. Several kinds share one transaction.
    const kinds = [claims.length > 0, hasEvents, finishes.length > 0].filter(Boolean).length;
    const result =
      kinds <= 1 ? await run(this.deps.db) : await this.deps.db.transaction().execute(run);
    this.stats.flushes++;
    this.stats.writes += batchSize(batch);

    const byId = new Map(result.claimed.map((row) => [row.id, row]));
    for (const c of claims) c.resolve(byId.get(c.taskId));
    const live = new Map(result.live.map((r) => [r.id, r]));
    for (const taskId of new Set(events.map((e) => e.taskId))) {
      const row = live.get(taskId);
      if (!row) this.deps.onSignal(taskId, 'fenced');
      else if (row.cancel_requested) this.deps.onSignal(taskId, 'cancel');
    }
    for (const f of finishes) f.resolve(result.finished.get(f.taskId));
    for (const s of batch.settled) s.resolve();
  }
}

/** The last usage each task reported in this batch (usage is cumulative). */
function latestUsage(events: PendingEvent[]) {
  const last = new Map<string, { taskId: string; claim: number; usage: TaskUsage }>();
  for (const e of events) if (e.usage) last.set(e.taskId, { ...e, usage: e.usage });
  return [...last.values()];
}

function subBatch(batch: Batch, taskId: string): Batch {
  return {
    claims: batch.claims.filter((c) => c.taskId === taskId),
    events: batch.events.filter((e) => e.taskId === taskId),
    finishes: batch.finishes.filter((f) => f.taskId === taskId),
    settled: [],
  };
}
