/**
 * One Prometheus registry per process (prom-client), created by the `main.ts`
 * files or `npm start` and passed in: the API and the worker each register
 * their own metrics on it (api/api-metrics.ts, worker/worker-metrics.ts), so
 * `npm start`, which runs both in one process, serves both from one /metrics.
 * Never prom-client's global registry: tests build several apps and workers
 * in one process, and each must count only its own.
 *
 * The counters here are the ones more than one part increments.
 */
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

export type { Registry } from 'prom-client';

/** Why a task reached a terminal status, as `error_code`: `none` when it completed. */
export const NO_ERROR_CODE = 'none';

export interface MetricsRegistry {
  registry: Registry;
  /**
   * `agentq_tasks_finished_total{status,error_code}`: tasks that reached a
   * terminal status, counted by the process that wrote it (a worker for an
   * attempt's outcome or a recovery, the API for a cancelled queued task).
   */
  tasksFinished: Counter<'status' | 'error_code'>;
  /**
   * `agentq_webhook_deliveries_total{outcome}`: one per delivery attempt of a
   * webhook. For the webhook sender to increment: `outcome` is `delivered`
   * (2xx), `retry` (non-2xx, timeout or connection error, tried again later),
   * `gone` (410, no more tries), `refused` (a private target after DNS) or
   * `gave_up` (the retry window ran out).
   */
  webhookDeliveries: Counter<'outcome'>;
}

export interface MetricsRegistryOptions {
  /**
   * Node's default process metrics (`process_*`, `nodejs_*`: CPU, memory,
   * event-loop lag, GC). Default true; off only where many registries share
   * one test process (each set adds its own event-loop monitor).
   */
  processMetrics?: boolean;
}

export function createMetricsRegistry(options: MetricsRegistryOptions = {}): MetricsRegistry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    tasksFinished: new Counter({
      name: 'agentq_tasks_finished_total',
      help: 'Tasks that reached a terminal status, by status and error code (none when completed).',
      labelNames: ['status', 'error_code'],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'agentq_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome (delivered, retry, gone, refused, gave_up).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
