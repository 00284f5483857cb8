/**
 * POST /v1/tasks/:id/rerun: a new task with the same input and the stored
 * (resolved) config, priority, max_attempts, timeout and metadata, plus
 * `metadata.rerun_of`. Any status may be run again; the original is untouched.
 */
import { context } from '@opentelemetry/api';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { uuidv7 } from 'uuidv7';
import type { ApiMetrics } from '../api-metrics.ts';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import { documentInput, errorResponses, jsonContent } from '../openapi.ts';
import { TaskSchema } from '../openapi-schemas.ts';
import { taskFindById, taskSubmit, type TaskRow } from '../../shared/tasks/task-queries.ts';
import { traceCarrierOf } from '../../shared/trace-context.ts';
import { assertModelAccepted } from './submit-schema.ts';
import { refuseFormBody } from './read-json-body.ts';
import { parseTaskId, TaskIdParams } from './task-id.ts';
import { taskJson } from './task-json.ts';

const rerunDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'rerunTask',
    summary: 'Run a task again, as a new task',
    description:
      'Any status (a finished task, or a queued or running one, which goes on). The new ' +
      "task has the original's input, resolved config, priority, max_attempts, timeout_s " +
      'and metadata plus `"rerun_of": "<id>"`; it runs now, with no idempotency key and no ' +
      'webhook_url. Takes no body. A model AGENTQ_ALLOWED_MODELS no longer allows is a 400.',
    responses: {
      201: {
        description: 'the new task',
        headers: { Location: { schema: { type: 'string' }, description: '/v1/tasks/{id}' } },
        content: jsonContent(TaskSchema),
      },
      ...errorResponses(400, 401, 403, 404, 415, 503),
    },
  }),
  documentInput('param', TaskIdParams),
] as const;

export function rerunRoutes(deps: AppDeps, metrics: ApiMetrics) {
  const app = new Hono();

  app.post('/:id/rerun', ...rerunDocs, async (c) => {
    const id = parseTaskId(c.req.param('id'));
    refuseFormBody(c, 'rerun');
    const original = await taskFindById(deps.db, id);
    if (!original) throw new ApiError(404, 'not_found', `no task ${id}`);
    // The operator may have narrowed the allowed models since.
    assertModelAccepted(original.config.provider, original.config.model, deps.config.allowedModels);
    const outcome = await taskSubmit(deps.db, rerunOf(original));
    metrics.tasksSubmitted.inc({ type: outcome.task.type });
    c.header('Location', `/v1/tasks/${outcome.task.id}`);
    return c.json(taskJson(outcome.task), 201);
  });

  return app;
}

function rerunOf(task: TaskRow) {
  return {
    id: uuidv7(),
    type: task.type,
    input: task.input,
    config: task.config,
    maxAttempts: task.max_attempts,
    priority: task.priority,
    timeoutMs: task.timeout_ms,
    runAt: null,
    metadata: { ...task.metadata, rerun_of: task.id },
    idempotencyKey: null,
    requestHash: null,
    traceContext: traceCarrierOf(context.active()),
  };
}
