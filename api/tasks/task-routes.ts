/**
 * /v1/tasks: submit, read (with long-poll), list, cancel. Every reply is
 * either a task, a page of tasks, or the error shape.
 */
import { context } from '@opentelemetry/api';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { ApiMetrics } from '../api-metrics.ts';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import { parseOr400, queryObject } from '../validation.ts';
import {
  taskCancelQueued,
  taskFindById,
  taskList,
  taskListSummary,
  taskRequestCancel,
  type TaskRow,
} from '../../shared/tasks/task-queries.ts';
import { SUMMARY_CHARS, taskSummaryJson } from '../../shared/tasks/task-summary.ts';
import { FILTER_FIELDS, taskFilterOf } from './task-filter.ts';
import { traceCarrierOf } from '../../shared/trace-context.ts';
import { SubmitBody } from './submit-schema.ts';
import { SubmitGatherer } from './submit-gatherer.ts';
import { idempotencyKeyOf, newTaskFrom, parseSubmitBody } from './submit-request.ts';
import { isTerminal, taskJson } from './task-json.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { parseTaskId, TaskIdParams } from './task-id.ts';
import { DEFAULT_RECHECK_MS, readUntil } from './wait-for-change.ts';
import { requestSignal } from '../request-signal.ts';
import { isConnectionError } from '../../shared/db/connection-errors.ts';
import type { StreamSlots } from './stream-slots.ts';
import { readJsonBody, refuseFormBody } from './read-json-body.ts';
import { documentInput, errorResponses, jsonContent } from '../openapi.ts';
import { TaskPageSchema, TaskSchema } from '../openapi-schemas.ts';

const MAX_WAIT_S = 60;

const GetQuery = v.strictObject({
  wait: v.optional(
    v.pipe(
      v.string(),
      v.metadata({
        description: `seconds (0 to ${MAX_WAIT_S}) to hold the request until the task is finished`,
        examples: ['30'],
      }),
      v.regex(/^\d+(\.\d+)?$/, `must be a number of seconds from 0 to ${MAX_WAIT_S}`),
      v.transform(Number),
      v.maxValue(MAX_WAIT_S, `must be at most ${MAX_WAIT_S}`),
    ),
  ),
});

const ListQuery = v.strictObject({
  ...FILTER_FIELDS,
  view: v.optional(
    v.pipe(
      v.picklist(['full', 'summary'], 'must be full or summary'),
      v.description(
        `summary: \`input.prompt\` and \`result.answer\` cut to ${SUMMARY_CHARS} characters plus "…", ` +
          'with `input_truncated` and `result_truncated` saying so',
      ),
    ),
    'full',
  ),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.metadata({ description: 'page size, 1 to 200', examples: ['20'] }),
      v.regex(/^\d{1,4}$/, 'must be a whole number from 1 to 200'),
      v.transform(Number),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(200, 'must be at most 200'),
    ),
    '50',
  ),
  cursor: v.optional(v.pipe(v.string(), v.description("the previous page's `next_cursor`"))),
});

/** Submit bodies from the shortest to every field (the OpenAPI examples; a test sends each). */
export const SUBMIT_EXAMPLES = {
  minimal: { input: { prompt: 'What is 17 * 23?' } },
  full: {
    type: 'agent',
    input: { prompt: 'What time is it in Tokyo? Answer in one sentence.' },
    config: {
      provider: 'openai',
      model: 'gpt-4o-mini',
      max_steps: 4,
      temperature: 0.2,
      tools: ['current_time'],
      system_prompt: 'Be brief.',
    },
    priority: 10,
    run_at: '2030-01-01T09:00:00Z',
    max_attempts: 2,
    timeout_s: 120,
    metadata: { team: 'search', ticket: 'SUP-1234' },
    idempotency_key: 'sup-1234-tokyo-time',
  },
};

type HeaderDoc = { description?: string; schema: { type: 'string'; enum?: string[] } };
const taskAnswer = (description: string, headers?: Record<string, HeaderDoc>) => ({
  description,
  ...(headers && { headers }),
  content: jsonContent(TaskSchema),
});

// What the OpenAPI document says of each route (api/openapi.ts); the handlers
// below keep their own parsing, so documenting changes no behaviour.
const submitTaskDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'submitTask',
    summary: 'Submit a task',
    description:
      'The body is strict: an unknown field is a 400 naming it. With an idempotency key ' +
      "(the body's `idempotency_key` or the `Idempotency-Key` header) the same request " +
      'answers the first task again; another request with the key is a 409.',
    parameters: [
      {
        in: 'header',
        name: 'Idempotency-Key',
        required: false,
        schema: { type: 'string', minLength: 1, maxLength: 200 },
        description: 'same as `idempotency_key` in the body (they must agree)',
      },
    ],
    requestBody: { required: true, content: jsonContent(SubmitBody, SUBMIT_EXAMPLES) },
    responses: {
      201: taskAnswer('submitted', {
        Location: { schema: { type: 'string' }, description: '/v1/tasks/{id}' },
      }),
      200: taskAnswer('a replay of an earlier submit with the same idempotency key', {
        'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] } },
      }),
      ...errorResponses(400, 401, 403, 409, 413, 415, 503),
    },
  }),
] as const;
const listTasksDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'listTasks',
    summary: 'List tasks, newest first',
    description:
      'Filters combine with AND; each list filter (comma-separated) matches any of its values. ' +
      '`q` matches ids by prefix when it looks like one (8+ hex digits), else the prompt ' +
      '(case-insensitive substring). `view=summary` cuts long prompts and answers. The ' +
      'cursor pages through the same filter.',
    responses: {
      200: { description: 'a page of tasks', content: jsonContent(TaskPageSchema) },
      ...errorResponses(400, 401, 403, 503),
    },
  }),
  documentInput('query', ListQuery),
] as const;
const getTaskDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'getTask',
    summary: 'Read a task, optionally waiting until it is finished',
    responses: {
      200: taskAnswer('the task (still unfinished if `wait` ran out)'),
      ...errorResponses(400, 401, 403, 404, 429, 503),
    },
  }),
  documentInput('param', TaskIdParams),
  documentInput('query', GetQuery),
] as const;
const cancelTaskDocs = [
  describeRoute({
    tags: ['tasks'],
    operationId: 'cancelTask',
    summary: 'Cancel a task',
    description:
      'Takes no body (or an `application/json` one, ignored). A queued task is cancelled ' +
      'at once (200); a running one is asked to stop (202) and its worker aborts within ' +
      'a second or two. Cancelling a cancelled task answers it again.',
    responses: {
      200: taskAnswer('cancelled'),
      202: taskAnswer('running: cancellation requested (`cancel_requested_at` is set)'),
      ...errorResponses(400, 401, 403, 404, 409, 415, 503),
    },
  }),
  documentInput('param', TaskIdParams),
] as const;

export function taskRoutes(deps: AppDeps, streams: StreamSlots, metrics: ApiMetrics) {
  const { db, config, listener } = deps;
  const app = new Hono();
  const submits = new SubmitGatherer(db);

  app.post('/', ...submitTaskDocs, async (c) => {
    const parsed = parseSubmitBody(await readJsonBody(c));
    if (parsed.issues) {
      throw new ApiError(400, 'invalid_request', parsed.issues[0]!.message, {
        issues: parsed.issues,
      });
    }
    const key = idempotencyKeyOf(parsed.body, c.req.header('idempotency-key'));
    // One statement: the row, its job and the replay/conflict check, shared
    // with the submits arriving at the same moment (SubmitGatherer).
    // The request span's context goes with the task, so the run joins this trace.
    const outcome = await submits.submit({
      ...newTaskFrom(parsed.body, key, config),
      traceContext: traceCarrierOf(context.active()),
    });
    const task = outcome.task;
    if (outcome.kind === 'conflict') {
      throw new ApiError(
        409,
        'idempotency_conflict',
        'this idempotency key was used with a different request',
        { task_id: task.id },
      );
    }
    c.header('Location', `/v1/tasks/${task.id}`);
    if (outcome.kind === 'created') metrics.tasksSubmitted.inc({ type: task.type });
    if (outcome.kind === 'replayed') {
      c.header('Idempotent-Replayed', 'true');
      return c.json(taskJson(task), 200);
    }
    return c.json(taskJson(task), 201);
  });

  app.get('/', ...listTasksDocs, async (c) => {
    const q = parseOr400(ListQuery, queryObject(c.req.url));
    const filter = {
      ...taskFilterOf(q),
      beforeId: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
      limit: q.limit,
    };
    const page =
      q.view === 'summary'
        ? await taskListSummary(deps.readDb ?? db, filter).then((p) => ({
            ...p,
            data: p.rows.map(taskSummaryJson),
          }))
        : await taskList(deps.readDb ?? db, filter).then((p) => ({
            ...p,
            data: p.rows.map(taskJson),
          }));
    const last = page.rows.at(-1);
    return c.json({
      data: page.data,
      next_cursor: page.hasMore && last ? encodeCursor(last.id) : null,
    });
  });

  app.get('/:id', ...getTaskDocs, async (c) => {
    const id = parseTaskId(c.req.param('id'));
    const q = parseOr400(GetQuery, queryObject(c.req.url));
    const waitMs = (q.wait ?? 0) * 1000;
    const isDone = (r: TaskRow | undefined) => r === undefined || isTerminal(r.status);
    let row: TaskRow | undefined;
    let unreachable = false;
    try {
      row = await taskFindById(db, id);
    } catch (err) {
      // A long-poll rides out a database restart (readUntil retries until its deadline).
      if (waitMs === 0 || !isConnectionError(err)) throw err;
      unreachable = true;
    }
    if (waitMs > 0 && (unreachable || !isDone(row))) {
      // Only a request that will really wait holds a stream slot.
      const release = streams.acquire();
      // A client that hangs up, or the server shutting down, ends the wait.
      const stop = requestSignal(c.req.raw.signal, deps.shutdownSignal);
      try {
        row = await readUntil({
          listener,
          channels: ['agentq_task'],
          key: id,
          read: () => taskFindById(db, id),
          isDone,
          waitMs,
          signal: stop.signal,
          recheckMs: deps.recheckMs ?? DEFAULT_RECHECK_MS,
        });
      } finally {
        stop.dispose();
        release();
      }
    }
    if (!row) throw new ApiError(404, 'not_found', `no task ${id}`);
    return c.json(taskJson(row));
  });

  app.post('/:id/cancel', ...cancelTaskDocs, async (c) => {
    const id = parseTaskId(c.req.param('id'));
    refuseFormBody(c, 'cancel');
    // Each branch is one guarded statement; if the task moved on between our
    // read and our write, read again (at most a few times: a task only moves forward).
    for (let i = 0; i < 4; i++) {
      const row = await taskFindById(db, id);
      if (!row) throw new ApiError(404, 'not_found', `no task ${id}`);
      if (row.status === 'cancelled') return c.json(taskJson(row), 200);
      if (isTerminal(row.status)) {
        throw new ApiError(409, 'already_finished', `task ${id} is already ${row.status}`, {
          status: row.status,
        });
      }
      if (row.status === 'queued') {
        const cancelled = await taskCancelQueued(db, id);
        if (cancelled) {
          // Never reached a worker: this is where it finished.
          metrics.base.tasksFinished.inc({ status: 'cancelled', error_code: 'cancelled' });
          return c.json(taskJson(cancelled), 200);
        }
      } else {
        const requested = await taskRequestCancel(db, id);
        if (requested) return c.json(taskJson(requested), 202);
      }
    }
    throw new ApiError(409, 'conflict', 'the task kept changing; retry');
  });

  return app;
}
