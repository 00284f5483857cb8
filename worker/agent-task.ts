/**
 * The graphile-worker task `agent` (payload `{ task_id }`): claim the task
 * row, run the agent under one AbortSignal, and write the outcome with a
 * fenced update. Every failure ends as a typed outcome: completed, failed
 * (with a code), cancelled, or back to queued for a retry.
 */
import type { Tracer } from '@opentelemetry/api';
import type { Task } from 'graphile-worker';
import type { Config } from '../shared/config.ts';
import type { Db } from '../shared/db/database.ts';
import type { TaskUsage } from '../shared/db/schema.ts';
import type { Logger } from '../shared/logger.ts';
import { TaskFailure } from '../shared/tasks/task-error.ts';
import {
  attemptOf,
  taskRequeue,
  taskTakeover,
  type Attempt,
  type Outcome,
} from '../shared/tasks/attempt-queries.ts';
import { taskFindById, type TaskRow } from '../shared/tasks/task-queries.ts';
import { contextOfCarrier, tracerOr } from '../shared/trace-context.ts';
import { endAttemptSpan, startAttemptSpan } from './agent/gen-ai-spans.ts';
import { abortKind, RunAbort } from './agent/run-abort.ts';
import { runAgent, type ToolRunner } from './agent/run-agent.ts';
import type { AttemptWriter } from './attempt-writer.ts';
import type { RunningAttempts } from './cancellations.ts';
import type { Provider } from './providers/provider.ts';
import { retryDelayMs } from './retry-policy.ts';
import { withDbRetry } from './with-db-retry.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export interface AgentTaskDeps {
  db: Db;
  config: Config;
  logger: Logger;
  attempts: RunningAttempts;
  /** The process's batched writer for claims, step events and outcomes. */
  writer: AttemptWriter;
  /** Resolves once this worker's row is in agentq.workers (its first heartbeat). */
  registered?: Promise<void>;
  /** The graphile-worker pool id of this process (known once the pool exists). */
  workerId: () => string;
  provider: (name: TaskRow['config']['provider']) => Provider;
  tools: ToolRunner;
  /** Spans of each attempt; default the global tracer (a no-op unless tracing was started). */
  tracer?: Tracer;
  /** Counts attempts, model calls and tool calls (worker-metrics.ts); unset, nothing is counted. */
  metrics?: WorkerMetrics;
}

/** How an attempt ended, before it is written: a final outcome, a retry, a shutdown requeue, or nothing (fenced). */
type AttemptOutcome =
  | Outcome
  | { status: 'retry'; failure: TaskFailure }
  | { status: 'fenced' }
  | { status: 'shutdown' };

export function makeAgentTask(deps: AgentTaskDeps): Task {
  return async (payload, helpers) => {
    const taskId = (payload as { task_id?: unknown } | null)?.task_id;
    if (typeof taskId !== 'string') {
      deps.logger.error({ payload }, 'agent job without a task_id; dropping it');
      return;
    }
    const jobId = Number(helpers.job.id);
    // graphile-worker hands out jobs as soon as its pool runs, which is before
    // this worker's first heartbeat: a task claimed by a worker with no row in
    // agentq.workers would look orphaned to its peers, so claims wait for it.
    await deps.registered;
    const early = deps.attempts.watchCancel(taskId);
    let task: TaskRow | undefined;
    try {
      task = await claim(deps, taskId, jobId);
    } finally {
      if (!task) early.stop();
    }
    if (!task) return;
    await runClaimed(deps, task, early);
  };
}

async function claim(
  deps: AgentTaskDeps,
  taskId: string,
  jobId: number,
): Promise<TaskRow | undefined> {
  const { db, logger } = deps;
  const workerId = deps.workerId();
  const claimed = await deps.writer.claim(taskId, jobId);
  if (claimed) return claimed;

  const row = await withDbRetry(() => taskFindById(db, taskId));
  if (!row || row.status !== 'running' || row.job_id !== jobId) {
    logger.debug(
      { taskId, jobId, status: row?.status },
      'job no longer matches its task; skipping',
    );
    return undefined;
  }
  // The same job is running again while the task still says running: the
  // previous execution was lost (its handler threw, or its worker was presumed
  // dead and the job unlocked). One fenced statement moves the claim on and
  // writes `recovered`; the task runs again here as the next attempt, or ends
  // failed (no attempt left) or cancelled (cancellation was requested).
  const taken = await withDbRetry(() =>
    taskTakeover(db, {
      taskId,
      jobId,
      workerId,
      previous: { claim: row.claim, workerId: row.worker_id },
    }),
  );
  if (taken?.status === 'running') return taken;
  if (taken) deps.metrics?.statusWritten(taken.status, taken.error?.code);
  logger.info(
    { taskId, jobId, status: taken?.status ?? 'fenced out' },
    'lost execution not run again',
  );
  return undefined;
}

async function runClaimed(
  deps: AgentTaskDeps,
  task: TaskRow,
  early: ReturnType<RunningAttempts['watchCancel']>,
): Promise<void> {
  const { logger } = deps;
  const attempt: Attempt = attemptOf(task);
  const log = logger.child({ taskId: task.id, attempt: task.attempts, claim: task.claim });
  const startedAt = performance.now();
  // Both database times (the claim set updated_at): no clock skew between hosts.
  deps.metrics?.attemptClaimed((task.updated_at.getTime() - task.run_at.getTime()) / 1000);
  const controller = deps.attempts.start(task.id);
  const timeout = setTimeout(() => deps.attempts.abort(task.id, 'timeout'), task.timeout_ms);
  // Requested before the claim (the row says so) or since (the early watch heard it).
  if (task.cancel_requested_at || early.requested()) deps.attempts.abort(task.id, 'cancel');
  early.stop();
  let usage: TaskUsage = task.usage;
  // A child of the submit's span (stored on the task), so one trace shows the
  // submit, every attempt and the outcome.
  const tracing = startAttemptSpan(
    tracerOr(deps.tracer),
    contextOfCarrier(task.trace_context),
    task,
  );

  // Queued, not awaited: the writer batches it with every other attempt's
  // writes, and what it learns (fenced out, cancel requested) aborts this
  // attempt through its signal.
  const record = async (
    type: Parameters<AttemptWriter['append']>[1],
    data: Record<string, unknown>,
    u?: TaskUsage,
  ) => {
    controller.signal.throwIfAborted();
    deps.metrics?.observeEvent(type, data, task.config);
    if (u) usage = { ...u };
    deps.writer.append(attempt, type, data, u);
  };

  let outcome: AttemptOutcome;
  try {
    const run = await runAgent(
      { prompt: task.input.prompt, config: task.config, usage },
      {
        provider: deps.provider(task.config.provider),
        tools: deps.tools,
        record,
        signal: controller.signal,
        maxParallelTools: deps.config.maxParallelTools,
        tracing,
      },
    );
    usage = run.usage;
    outcome = { status: 'completed', result: { answer: run.answer } };
  } catch (err) {
    outcome = classify(err, controller.signal, task, log);
  } finally {
    clearTimeout(timeout);
  }
  let written: string | undefined;
  try {
    written = await writeOutcome(deps, task, attempt, outcome, usage, log);
    if (written) {
      deps.metrics?.attemptWritten(written, (performance.now() - startedAt) / 1000);
      // A cancel requested meanwhile wins over a failure or a requeue.
      deps.metrics?.statusWritten(
        written,
        written === 'cancelled' ? 'cancelled' : errorCodeOf(outcome),
      );
    }
  } finally {
    endAttemptSpan(tracing.span, {
      outcome: outcome.status,
      status: written,
      error:
        outcome.status === 'failed'
          ? outcome.error
          : outcome.status === 'retry'
            ? outcome.failure
            : undefined,
    });
    // Only now: until the outcome is written, the heartbeat must not take this
    // task for one its worker lost track of.
    deps.attempts.finish(task.id);
  }
}

async function writeOutcome(
  deps: AgentTaskDeps,
  task: TaskRow,
  attempt: Attempt,
  outcome: AttemptOutcome,
  usage: TaskUsage,
  log: Logger,
): Promise<string | undefined> {
  const { db } = deps;
  // A requeue is its own transaction: the attempt's queued events go first.
  if (outcome.status === 'shutdown' || outcome.status === 'retry') await deps.writer.settle();

  let written: string | undefined;
  switch (outcome.status) {
    case 'fenced':
      log.warn(FENCED_OUT);
      return undefined;
    case 'shutdown':
      written = await withDbRetry(() =>
        taskRequeue(db, attempt, {
          error: {
            code: 'worker_lost',
            message: 'the worker shut down during this attempt',
            retryable: true,
          },
          runAt: new Date(),
          usage,
          event: 'retry',
          data: {
            attempt: task.attempts,
            reason: 'worker shutdown',
            delay_ms: 0,
            counts_as_attempt: false,
          },
          refundAttempt: true,
        }),
      );
      break;
    case 'retry': {
      const delay = retryDelayMs(task.attempts, outcome.failure.retryAfterMs, {
        baseMs: deps.config.retryBaseMs,
        maxMs: deps.config.retryMaxMs,
      });
      const runAt = new Date(Date.now() + delay);
      const error = outcome.failure.toJSON();
      written = await withDbRetry(() =>
        taskRequeue(db, attempt, {
          error,
          runAt,
          usage,
          event: 'retry',
          data: {
            attempt: task.attempts,
            error,
            delay_ms: delay,
            next_run_at: runAt.toISOString(),
          },
        }),
      );
      break;
    }
    default:
      written = await deps.writer.finish(attempt, outcome, usage);
  }
  if (!written) log.warn({ outcome: outcome.status }, FENCED_OUT);
  else log.info({ outcome: outcome.status, status: written }, 'attempt finished');
  return written;
}

function errorCodeOf(outcome: AttemptOutcome): string | undefined {
  switch (outcome.status) {
    case 'failed':
    case 'cancelled':
      return outcome.error.code;
    case 'retry':
      return outcome.failure.code;
    case 'shutdown':
      return 'worker_lost';
    default:
      return undefined;
  }
}

// One line whether the fence stopped the run early or refused its outcome.
const FENCED_OUT = 'attempt fenced out: another attempt owns this task now';

export const INTERNAL_ERROR_MESSAGE = 'internal error in the worker (details are in its log)';

/** How an attempt's thrown error becomes its outcome. Exported for tests. */
export function classify(
  err: unknown,
  signal: AbortSignal,
  task: TaskRow,
  log: Logger,
): AttemptOutcome {
  const kind = abortKind(signal) ?? (err instanceof RunAbort ? err.kind : undefined);
  if (kind === 'fenced') return { status: 'fenced' };
  if (kind === 'cancel') {
    return {
      status: 'cancelled',
      error: { code: 'cancelled', message: 'cancelled by request', retryable: false },
    };
  }
  if (kind === 'shutdown') return { status: 'shutdown' };
  let failure: TaskFailure;
  if (kind === 'timeout') {
    failure = new TaskFailure(
      'timeout',
      `the attempt ran longer than timeout_s (${task.timeout_ms / 1000} s)`,
    );
  } else if (err instanceof TaskFailure) {
    failure = err;
    // The task's error carries a redacted, shortened provider message; the
    // provider's full answer is for the operator's log only.
    if (failure.cause !== undefined)
      log.warn({ err: failure.cause, code: failure.code }, failure.message);
  } else {
    // The full error goes to the log only: its text may be a database's
    // (names, values, SQL) or a library's, none of it for the task's reader.
    log.error({ err }, 'unexpected error in the agent run');
    failure = new TaskFailure('internal_error', INTERNAL_ERROR_MESSAGE);
  }
  if (failure.retryable && task.attempts < task.max_attempts) return { status: 'retry', failure };
  // Final: no retry is left, whatever the code would allow.
  return {
    status: 'failed',
    error: { ...failure.toJSON(), retryable: false },
    cancelWins: failure.retryable,
  };
}
