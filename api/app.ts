/**
 * The HTTP app, built from its dependencies (no globals), so tests call
 * `createApp(deps).request('/v1/…')` without a port and can run several.
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppDeps } from './app-deps.ts';
import { registerApiMetrics, registerOpenStreamsGauge } from './api-metrics.ts';
import { bearerAuth } from './auth.ts';
import { ApiError, errorBody, makeErrorHandler } from './errors.ts';
import { dashboardRoutes } from './dashboard/dashboard-routes.tsx';
import { healthRoutes } from './health-routes.ts';
import { localGuard } from './local-guard.ts';
import { meRoutes } from './me-routes.ts';
import { QueueStatsReader } from './queue-stats-reader.ts';
import { queueRoutes } from './queue-routes.ts';
import { mountOpenApi } from './openapi.ts';
import { requestSpan } from './request-span.ts';
import { tracerOr } from '../shared/trace-context.ts';
import { httpMetrics, metricsRoutes } from './metrics-routes.ts';
import { createMetricsRegistry } from '../shared/metrics/metrics-registry.ts';
import { StreamSlots } from './tasks/stream-slots.ts';
import { eventRoutes } from './tasks/event-routes.ts';
import { batchRoutes } from './tasks/batch-routes.ts';
import { taskRoutes } from './tasks/task-routes.ts';
import { changesRoutes } from './tasks/changes-routes.ts';
import { rerunRoutes } from './tasks/rerun-routes.ts';
import { bulkCancelRoutes } from './tasks/bulk-cancel-routes.ts';

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const metrics = registerApiMetrics(
    deps.metrics ?? createMetricsRegistry({ processMetrics: false }),
    { db: deps.db, logger: deps.logger, cacheMs: deps.metricsCacheMs },
  );
  // First, so every answer counts, refusals by the guards below included.
  app.use('*', httpMetrics(metrics));
  app.onError(makeErrorHandler(deps.logger));
  app.notFound((c) =>
    c.json(errorBody('not_found', `no route ${c.req.method} ${c.req.path}`), 404),
  );

  // First, so the span covers every answer, refusals included.
  app.use('*', requestSpan(tracerOr(deps.tracer)));
  // Without tokens, refuse foreign Host and Origin (DNS rebinding, cross-site forms) everywhere.
  if (deps.config.apiTokens.length === 0)
    app.use('*', localGuard(deps.listenPort ?? (() => undefined)));
  app.route('/', healthRoutes(deps));
  if (deps.config.apiTokens.length > 0 && !deps.config.metricsPublic)
    app.use('/metrics', bearerAuth(deps.config.apiTokens, deps.config.apiReadTokens));
  app.route('/', metricsRoutes(metrics));
  // Page shells and their files, outside /v1: no data, so no token (the script sends it).
  app.route('/', dashboardRoutes(deps.config));

  if (deps.config.apiTokens.length > 0)
    app.use('/v1/*', bearerAuth(deps.config.apiTokens, deps.config.apiReadTokens));
  // Checks Content-Length before reading, so an oversized body is refused unread.
  const limit = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError(
          413,
          'payload_too_large',
          `request body is larger than ${maxSize} bytes`,
        );
      },
    });
  const bodyLimitSingle = limit(deps.config.bodyLimitBytes);
  // A batch carries up to 1,000 submit bodies: it gets its own, larger limit.
  const bodyLimitBatch = limit(deps.config.batchBodyLimitBytes);
  app.use('/v1/*', (c, next) =>
    (c.req.path === '/v1/tasks/batch' ? bodyLimitBatch : bodyLimitSingle)(c, next),
  );
  const streams = new StreamSlots(deps.config.maxStreams);
  registerOpenStreamsGauge(metrics.base, () => streams.inUse);
  app.route('/v1/tasks', batchRoutes(deps, metrics));
  app.route('/v1/tasks', bulkCancelRoutes(deps, metrics));
  app.route('/v1/tasks', taskRoutes(deps, streams, metrics));
  app.route('/v1/tasks', eventRoutes(deps, streams));
  app.route('/v1/tasks', rerunRoutes(deps, metrics));
  app.route('/v1', meRoutes(deps));
  const stats = new QueueStatsReader(deps.db);
  app.route('/v1', queueRoutes(deps, stats));
  app.route('/v1', changesRoutes(deps, streams, stats));
  // Last: the document is built from every route registered before it.
  mountOpenApi(app, deps.config);
  return app;
}
