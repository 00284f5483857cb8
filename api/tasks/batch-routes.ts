/**
 * POST /v1/tasks/batch: up to MAX_BATCH tasks in one statement (one
 * transaction, one graphile_worker.add_jobs call), all or nothing. Each item is
 * a submit body, validated, resolved and hashed exactly like POST /v1/tasks;
 * errors name the item (`tasks[3].config.model`).
 */
import { context } from '@opentelemetry/api';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { ApiMetrics } from '../api-metrics.ts';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import type { IssueDetail } from '../validation.ts';
import { taskInsertManyWithJobs, type NewTask } from '../../shared/tasks/task-queries.ts';
import { traceCarrierOf } from '../../shared/trace-context.ts';
import { readJsonBody } from './read-json-body.ts';
import { isPlainObject, SubmitBody } from './submit-schema.ts';
import { errorResponses, jsonContent } from '../openapi.ts';
import { BatchResultSchema } from '../openapi-schemas.ts';
import { idempotencyKeyOf, newTaskFrom, parseSubmitBody } from './submit-request.ts';
import { taskJson } from './task-json.ts';

export const MAX_BATCH = 1000;
// A body with every item wrong would otherwise answer with a huge error.
const MAX_REPORTED_ISSUES = 100;

/**
 * The batch body, for the OpenAPI document: the route checks the envelope by
 * hand (its messages name the item) and each item with SubmitBody itself.
 */
export const BatchBody = v.strictObject({
  tasks: v.pipe(v.array(SubmitBody), v.minLength(1), v.maxLength(MAX_BATCH)),
});

export const BATCH_EXAMPLES = {
  two: {
    tasks: [
      { input: { prompt: 'What is 2 + 2?' } },
      { input: { prompt: 'What is 3 * 7?' }, priority: 5, metadata: { batch: 'nightly' } },
    ],
  },
};

// What the OpenAPI document says of the route (the handler checks the body itself).
const submitTaskBatchDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'submitTaskBatch',
    summary: `Submit 1 to ${MAX_BATCH} tasks at once, all or nothing`,
    description:
      'Each item is a submit body, checked like a single submit; errors name the item ' +
      '(`tasks[3].config.model`, `details.index`). Items carry their own `idempotency_key`; ' +
      'the `Idempotency-Key` header is refused.',
    requestBody: { required: true, content: jsonContent(BatchBody, BATCH_EXAMPLES) },
    responses: {
      201: { description: 'submitted', content: jsonContent(BatchResultSchema) },
      200: {
        description: 'every item was a replay (`Idempotent-Replayed: true`)',
        content: jsonContent(BatchResultSchema),
      },
      ...errorResponses(400, 401, 403, 409, 413, 415, 503),
    },
  }),
] as const;

export function batchRoutes(deps: AppDeps, metrics: ApiMetrics) {
  const { db, config } = deps;
  const app = new Hono();

  app.post('/batch', ...submitTaskBatchDocs, async (c) => {
    if (c.req.header('idempotency-key') !== undefined) {
      throw new ApiError(
        400,
        'invalid_request',
        'Idempotency-Key does not apply to a batch: give each task its own idempotency_key',
      );
    }
    const raw = await readJsonBody(c);
    if (!isPlainObject(raw))
      throw new ApiError(400, 'invalid_request', 'body: must be a JSON object');
    const unknown = Object.keys(raw).find((k) => k !== 'tasks');
    if (unknown !== undefined)
      throw new ApiError(400, 'invalid_request', `unknown field "${unknown}"`);
    const items = raw.tasks;
    if (!Array.isArray(items))
      throw new ApiError(400, 'invalid_request', 'tasks: must be an array of tasks');
    if (items.length === 0 || items.length > MAX_BATCH) {
      throw new ApiError(
        400,
        'invalid_request',
        `tasks: must hold from 1 to ${MAX_BATCH} tasks, not ${items.length}`,
      );
    }

    // Every item is checked before anything is written; the message names the
    // first bad one, `details.issues` lists the problems of all of them.
    const tasks: NewTask[] = [];
    // Every task of the batch joins the batch request's trace.
    const traceContext = traceCarrierOf(context.active());
    const issues: IssueDetail[] = [];
    let firstBad: number | undefined;
    for (const [i, item] of items.entries()) {
      const parsed = parseSubmitBody(item, `tasks[${i}]`);
      if (parsed.issues) {
        firstBad ??= i;
        issues.push(...parsed.issues);
        continue;
      }
      tasks.push({
        ...newTaskFrom(
          parsed.body,
          idempotencyKeyOf(parsed.body, undefined),
          config,
          `tasks[${i}]`,
        ),
        traceContext,
      });
    }
    if (firstBad !== undefined) {
      throw new ApiError(400, 'invalid_request', issues[0]!.message, {
        index: firstBad,
        issues: issues.slice(0, MAX_REPORTED_ISSUES),
      });
    }

    const result = await taskInsertManyWithJobs(db, tasks);
    if (result.kind === 'conflict') {
      const other =
        result.task !== undefined
          ? `task ${result.task.id}`
          : `tasks[${result.earlierIndex}] in this batch`;
      throw new ApiError(
        409,
        'idempotency_conflict',
        `tasks[${result.index}]: this idempotency key was used with a different request (${other}); nothing was submitted`,
        {
          index: result.index,
          ...(result.task !== undefined ? { task_id: result.task.id } : {}),
          ...(result.earlierIndex !== undefined ? { earlier_index: result.earlierIndex } : {}),
        },
      );
    }
    const replayed = result.outcomes.flatMap((o, i) => (o.kind === 'replayed' ? [i] : []));
    for (const o of result.outcomes)
      if (o.kind === 'created') metrics.tasksSubmitted.inc({ type: o.task.type });
    const body = { data: result.outcomes.map((o) => taskJson(o.task)), replayed };
    // Nothing new: the same answer a replayed single submit gets.
    if (replayed.length === result.outcomes.length) {
      c.header('Idempotent-Replayed', 'true');
      return c.json(body, 200);
    }
    return c.json(body, 201);
  });

  return app;
}
