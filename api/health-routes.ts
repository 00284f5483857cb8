/**
 * /healthz (the process is up) and /readyz (the database answers and its schema
 * is current). Neither says why the database failed: that is in the log.
 */
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { AppDeps } from './app-deps.ts';
import { pendingMigrations } from '../shared/db/migrate.ts';
import { HealthSchema, ReadySchema } from './openapi-schemas.ts';
import { jsonContent } from './openapi.ts';

// Probes never need a token.
const probe = { tags: ['meta'], security: [] };

const healthDocs = describeRoute({
  ...probe,
  operationId: 'getHealth',
  summary: 'Liveness: the process is up',
  responses: { 200: { description: 'up', content: jsonContent(HealthSchema) } },
});
const readinessDocs = describeRoute({
  ...probe,
  operationId: 'getReadiness',
  summary: 'Readiness: the database answers and its migrations are current',
  responses: {
    200: { description: 'ready', content: jsonContent(ReadySchema) },
    503: {
      description: 'not ready (the cause is in the log) or shutting down',
      content: jsonContent(ReadySchema),
    },
  },
});

export function healthRoutes(deps: AppDeps) {
  const app = new Hono();
  app.get('/healthz', healthDocs, (c) => c.json({ status: 'ok' }));
  app.get('/readyz', readinessDocs, async (c) => {
    if (deps.shutdownSignal.aborted) return c.json({ status: 'shutting_down' }, 503);
    try {
      const pending = await pendingMigrations(deps.pool);
      if (pending.length > 0)
        return c.json({ status: 'not_ready', pending_migrations: pending }, 503);
      return c.json({ status: 'ready' });
    } catch (err) {
      // The error names hosts, ports and databases: log it, answer a generic reason.
      deps.logger.warn({ err }, 'readiness check failed');
      return c.json({ status: 'not_ready', reason: 'database_unavailable' }, 503);
    }
  });
  return app;
}
