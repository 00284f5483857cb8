/**
 * GET /metrics in the Prometheus text format, and the middleware that counts
 * every HTTP request by method, route pattern and status. Auth is wired in
 * app.ts: the /v1 bearer tokens unless AGENTQ_METRICS_PUBLIC=true.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { describeRoute } from 'hono-openapi';
import type { ApiMetrics } from './api-metrics.ts';
import { errorResponses } from './openapi.ts';

// For the OpenAPI document: text, not JSON, and the /v1 token unless AGENTQ_METRICS_PUBLIC.
const metricsDocs = describeRoute({
  tags: ['meta'],
  operationId: 'getMetrics',
  summary: 'Prometheus metrics of this process (text exposition format)',
  responses: {
    200: {
      description: 'the metrics, in the Prometheus text format',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
    ...errorResponses(401, 403),
  },
});

export function metricsRoutes(metrics: ApiMetrics) {
  const app = new Hono();
  const { registry } = metrics.base;
  app.get('/metrics', metricsDocs, async (c) => {
    const text = await registry.metrics();
    return c.body(text, 200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
  });
  return app;
}

/**
 * Counts each answered request under its route pattern (`/v1/tasks/:id`),
 * taken from the routes that matched, so a request refused by auth before
 * its handler ran still counts under the route it asked for. A request no
 * route serves counts as `unmatched`: paths never become label values, so
 * neither task ids nor a scanner's guesses can grow the series.
 */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export function httpMetrics(metrics: ApiMetrics): MiddlewareHandler {
  return async (c, next) => {
    try {
      await next();
    } finally {
      // Middleware (app.use) registers as ALL; the last other match is the endpoint.
      const endpoint = matchedRoutes(c).findLast((r) => r.method !== 'ALL');
      metrics.httpRequests.inc({
        method: METHODS.has(c.req.method) ? c.req.method : 'other',
        route: endpoint?.path ?? 'unmatched',
        status: String(c.res.status),
      });
    }
  };
}
