/**
 * The graphile-worker task `webhook` (payload `{ task_id, delivery_id,
 * attempt }`, first added by the terminal-status trigger of migrations/0006):
 * one delivery attempt of a finished task's outcome, per Standard Webhooks.
 *
 * The body is `{ type: 'task.completed' | 'task.failed' | 'task.cancelled',
 * timestamp: <finished_at>, data: <the task JSON as GET /v1/tasks/:id shows
 * it> }`; the finished row is frozen, so every attempt sends the same bytes.
 * The headers carry the stable delivery id and a fresh timestamp and signature.
 *
 * Outcomes, each recorded as a `webhook` event in the task's step log:
 *   delivered  a 2xx answer
 *   gone       410: the receiver asked us to stop; no retry
 *   refused    the target is loopback/private/link-local (after DNS); no retry
 *   retrying   any other answer, a timeout, a connection or DNS error: the
 *              next attempt is a new job with the same payload but attempt+1,
 *              added in the same transaction as the event, run after a
 *              growing delay (or the receiver's Retry-After, up to the max)
 *   gave_up    the same, on the last of AGENTQ_WEBHOOK_MAX_ATTEMPTS
 * The task's status never depends on its webhook.
 */
import type { Task } from 'graphile-worker';
import type { Counter } from 'prom-client';
import type { Config } from '../../shared/config.ts';
import type { Db } from '../../shared/db/database.ts';
import type { Logger } from '../../shared/logger.ts';
import { isTerminal, taskJson } from '../../shared/tasks/task-json.ts';
import { taskFindById } from '../../shared/tasks/task-queries.ts';
import {
  webhookAttemptRecord,
  type WebhookJobPayload,
} from '../../shared/webhooks/webhook-queries.ts';
import { retryDelayMs } from '../retry-policy.ts';
import { withDbRetry } from '../with-db-retry.ts';
import { postWebhook, systemResolver, type PostResult, type Resolver } from './post-webhook.ts';
import { signWebhook } from './sign-webhook.ts';

export interface WebhookTaskDeps {
  db: Db;
  config: Config;
  logger: Logger;
  /** Name resolution for delivery targets; the system resolver by default (tests map names). */
  resolve?: Resolver;
  /** Counts each attempt by outcome (agentq_webhook_deliveries_total); unset, nothing is counted. */
  deliveries?: Pick<Counter<'outcome'>, 'inc'>;
}

export type WebhookOutcome = 'delivered' | 'gone' | 'refused' | 'retrying' | 'gave_up';

function parsePayload(payload: unknown): WebhookJobPayload | undefined {
  const p = payload as Partial<WebhookJobPayload> | null;
  if (
    typeof p?.task_id !== 'string' ||
    typeof p.delivery_id !== 'string' ||
    typeof p.attempt !== 'number'
  )
    return undefined;
  return { task_id: p.task_id, delivery_id: p.delivery_id, attempt: p.attempt };
}

export function makeWebhookTask(deps: WebhookTaskDeps): Task {
  const { db, config, logger } = deps;
  const resolve = deps.resolve ?? systemResolver;
  return async (rawPayload, helpers) => {
    const job = parsePayload(rawPayload);
    if (!job) {
      logger.error({ payload: rawPayload }, 'webhook job with a malformed payload; dropping it');
      return;
    }
    const row = await withDbRetry(() => taskFindById(db, job.task_id));
    if (!row || row.webhook_url === null || !isTerminal(row.status)) {
      logger.debug({ taskId: job.task_id }, 'webhook job without a finished task; dropping it');
      return;
    }
    const body = JSON.stringify({
      type: `task.${row.status}`,
      timestamp: (row.finished_at ?? row.updated_at).toISOString(),
      data: taskJson(row),
    });

    const started = Date.now();
    const secret = config.webhookSecrets[0];
    const result: PostResult =
      secret === undefined
        ? { kind: 'error', message: 'AGENTQ_WEBHOOK_SECRET is not set on this worker' }
        : await postWebhook(
            row.webhook_url,
            body,
            signWebhook(secret, job.delivery_id, Math.floor(Date.now() / 1000), body),
            {
              resolve,
              allowPrivate: config.webhookAllowPrivate,
              timeoutMs: config.webhookTimeoutMs,
              signal: helpers.abortSignal,
            },
          );
    const durationMs = Date.now() - started;

    const outcome = outcomeOf(result, job.attempt, config.webhookMaxAttempts);
    const next =
      outcome === 'retrying'
        ? {
            payload: { ...job, attempt: job.attempt + 1 },
            delayMs: webhookRetryDelayMs(job.attempt, result, config),
          }
        : undefined;
    const data = {
      delivery_id: job.delivery_id,
      attempt: job.attempt,
      outcome,
      ...(result.kind === 'response' ? { status_code: result.status } : { error: result.message }),
      duration_ms: durationMs,
      // next_attempt_at is added by the statement, from the database's clock
    };
    await withDbRetry(() => webhookAttemptRecord(db, row.id, data, next));
    // README names the retrying attempt `retry`.
    deps.deliveries?.inc({ outcome: outcome === 'retrying' ? 'retry' : outcome });
    const log = outcome === 'delivered' ? logger.info.bind(logger) : logger.warn.bind(logger);
    log({ taskId: row.id, ...data }, `webhook ${outcome}`);
  };
}

function outcomeOf(result: PostResult, attempt: number, maxAttempts: number): WebhookOutcome {
  if (result.kind === 'refused') return 'refused';
  if (result.kind === 'response' && result.status >= 200 && result.status < 300) return 'delivered';
  if (result.kind === 'response' && result.status === 410) return 'gone';
  return attempt >= maxAttempts ? 'gave_up' : 'retrying';
}

/** Exponential with jitter; a receiver's Retry-After is honoured up to the configured maximum. */
export function webhookRetryDelayMs(
  attempt: number,
  result: PostResult,
  config: Pick<Config, 'webhookRetryBaseMs' | 'webhookRetryMaxMs'>,
): number {
  const retryAfter = result.kind === 'response' ? result.retryAfterMs : undefined;
  const settings = { baseMs: config.webhookRetryBaseMs, maxMs: config.webhookRetryMaxMs };
  return Math.min(
    retryDelayMs(
      attempt,
      retryAfter === undefined ? undefined : Math.min(retryAfter, settings.maxMs),
      settings,
    ),
    settings.maxMs,
  );
}
