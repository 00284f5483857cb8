/**
 * GET /v1/stats (counts per status, queue depth, oldest wait) and
 * GET /v1/workers (live workers and what they run): the dashboard's queue view.
 */
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import type * as v from 'valibot';
import type { AppDeps } from './app-deps.ts';
import { errorResponses, jsonContent } from './openapi.ts';
import { StatsSchema, WorkerListSchema } from './openapi-schemas.ts';
import type { QueueStatsReader } from './queue-stats-reader.ts';
import { workerList, type WorkerListRow } from '../shared/workers/worker-queries.ts';

const statsDocs = describeRoute({
  tags: ['queue'],
  operationId: 'getStats',
  summary: 'Tasks per status, due queue depth, oldest wait, workers',
  description:
    'From the `agentq.queue_stats` view. It counts every task, so on a large table it costs ' +
    'a scan: the change stream (`GET /v1/changes`) sends the same object when it changes.',
  responses: {
    200: { description: 'the queue now', content: jsonContent(StatsSchema) },
    ...errorResponses(401, 403, 503),
  },
});

const workersDocs = describeRoute({
  tags: ['queue'],
  operationId: 'listWorkers',
  summary: 'Registered workers, the most recently started first',
  description:
    '`alive`: heard from within AGENTQ_WORKER_DEAD_AFTER_MS. A worker silent longer is ' +
    'removed by a live peer, which hands its tasks back; it stays listed until then.',
  responses: {
    200: { description: 'the workers', content: jsonContent(WorkerListSchema) },
    ...errorResponses(401, 403, 503),
  },
});

const workerJson = (w: WorkerListRow) => ({
  id: w.id,
  hostname: w.hostname,
  pid: w.pid,
  version: w.version,
  concurrency: w.concurrency,
  started_at: w.started_at.toISOString(),
  last_seen_at: w.last_seen_at.toISOString(),
  alive: w.alive,
  running: w.running,
  running_task_ids: w.running_task_ids,
});

export function queueRoutes(deps: AppDeps, stats: QueueStatsReader) {
  const app = new Hono();
  app.get('/stats', statsDocs, async (c) => c.json(await stats.read()));
  app.get('/workers', workersDocs, async (c) => {
    const rows = await workerList(deps.db, deps.config.workerDeadAfterMs);
    return c.json({
      data: rows.map(workerJson),
    } satisfies v.InferOutput<typeof WorkerListSchema>);
  });
  return app;
}
