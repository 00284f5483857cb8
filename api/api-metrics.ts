/**
 * The API's metrics, registered on the process's registry
 * (shared/metrics/metrics-registry.ts): submits, HTTP requests, and the
 * queue's depth and oldest age, read from the database when scraped.
 */
import { Counter, Gauge } from 'prom-client';
import type { Db } from '../shared/db/database.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import { taskQueueStats, type QueueStat } from '../shared/tasks/queue-stats-queries.ts';

export interface ApiMetrics {
  base: MetricsRegistry;
  /** `agentq_tasks_submitted_total{type}`: new tasks (a batch counts each; replays count none). */
  tasksSubmitted: Counter<'type'>;
  /** `agentq_http_requests_total{method,route,status}`: route is the pattern, never a path with an id. */
  httpRequests: Counter<'method' | 'route' | 'status'>;
}

/** How long one read of the queue serves scrapes; default 1 s. */
export const QUEUE_STATS_CACHE_MS = 1000;

export function registerApiMetrics(
  base: MetricsRegistry,
  deps: { db: Db; logger: Logger; cacheMs?: number },
): ApiMetrics {
  const registers = [base.registry];
  const stats = cachedQueueStats(deps.db, deps.cacheMs ?? QUEUE_STATS_CACHE_MS);
  new Gauge({
    name: 'agentq_queue_depth',
    help: 'Tasks queued (due or scheduled) and running, read from the database at scrape time.',
    labelNames: ['status'],
    registers,
    async collect() {
      await fill(this, (s) => s.tasks);
    },
  });
  new Gauge({
    name: 'agentq_queue_oldest_age_seconds',
    help: 'queued: seconds the oldest due task has waited since its run_at; running: seconds since the longest-running task started.',
    labelNames: ['status'],
    registers,
    async collect() {
      await fill(this, (s) => s.oldestAgeSeconds);
    },
  });
  // A database that does not answer leaves both gauges empty for this scrape
  // (an absent series, not a false zero) and /metrics still answers.
  async function fill(gauge: Gauge<'status'>, value: (s: QueueStat) => number) {
    gauge.reset();
    try {
      for (const s of await stats()) gauge.set({ status: s.status }, value(s));
    } catch (err) {
      deps.logger.warn({ err }, 'metrics: reading the queue stats failed');
    }
  }
  return {
    base,
    tasksSubmitted: new Counter({
      name: 'agentq_tasks_submitted_total',
      help: 'Tasks submitted (created, not idempotent replays), by type; each task of a batch counts.',
      labelNames: ['type'],
      registers,
    }),
    httpRequests: new Counter({
      name: 'agentq_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
  };
}

/**
 * `agentq_api_open_streams`: the SSE streams and waiting long-polls this
 * process holds open now (AGENTQ_MAX_STREAMS caps them), read at scrape time.
 */
export function registerOpenStreamsGauge(base: MetricsRegistry, inUse: () => number): void {
  const name = 'agentq_api_open_streams';
  if (base.registry.getSingleMetric(name)) return; // one per registry (one app per process)
  new Gauge({
    name,
    help: 'SSE streams and waiting long-polls this API process holds open (AGENTQ_MAX_STREAMS caps them).',
    registers: [base.registry],
    collect() {
      this.set(inUse());
    },
  });
}

/**
 * One query shared by both gauges and by every scrape within `ttlMs` of it:
 * concurrent scrapes (several Prometheus servers, a dashboard) wait on the
 * same read instead of each sending their own.
 */
function cachedQueueStats(db: Db, ttlMs: number): () => Promise<QueueStat[]> {
  let current: { promise: Promise<QueueStat[]>; settledAt?: number } | undefined;
  return () => {
    // A read in flight is always shared; a finished one for ttlMs after it finished.
    if (current && (current.settledAt === undefined || Date.now() - current.settledAt < ttlMs))
      return current.promise;
    const entry: { promise: Promise<QueueStat[]>; settledAt?: number } = {
      promise: taskQueueStats(db),
    };
    current = entry;
    entry.promise.then(
      () => {
        entry.settledAt = Date.now();
      },
      // A failed read is not kept: the next scrape tries again.
      () => {
        if (current === entry) current = undefined;
      },
    );
    return entry.promise;
  };
}
