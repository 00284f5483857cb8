/**
 * POST /v1/tasks/cancel: cancels every queued and running task matching a
 * filter (the list's fields), as the single cancel does each: queued ones at
 * once, running ones asked to stop. `dry_run` only counts; `expected_count`
 * (the number a person confirmed) must still match, else 409 count_changed.
 */
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { ApiMetrics } from '../api-metrics.ts';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, jsonContent } from '../openapi.ts';
import { parseOr400 } from '../validation.ts';
import { taskCancelMatching } from '../../shared/tasks/task-queries.ts';
import { readJsonBody } from './read-json-body.ts';
import { TaskFilterObject, taskFilterOf } from './task-filter.ts';

/** Tasks one call touches at most; `has_more` says to call again. */
export const BULK_CANCEL_LIMIT = 10_000;

const BulkCancelBody = v.strictObject({
  filter: v.pipe(
    TaskFilterObject,
    v.description(
      'the fields of `GET /v1/tasks`, as the same strings; required, and `{}` means every ' +
        'queued and running task',
    ),
  ),
  dry_run: v.optional(
    v.pipe(v.boolean(), v.description('only count the matches (`{"matched": n}`)')),
    false,
  ),
  expected_count: v.optional(
    v.pipe(
      v.number(),
      v.integer('must be a whole number'),
      v.minValue(0, 'must be at least 0'),
      v.description('the count the caller confirmed; another count is a 409 count_changed'),
    ),
  ),
});

const BulkCancelResult = v.pipe(
  v.strictObject({
    matched: v.pipe(v.number(), v.description('queued and running tasks matching the filter')),
    cancelled: v.optional(v.pipe(v.number(), v.description('queued tasks now cancelled'))),
    cancel_requested: v.optional(
      v.pipe(v.number(), v.description('running tasks asked to stop (their workers abort)')),
    ),
    has_more: v.optional(
      v.pipe(
        v.boolean(),
        v.description(`more than ${BULK_CANCEL_LIMIT} matched: call again for the rest`),
      ),
    ),
  }),
  v.metadata({ ref: 'BulkCancelResult' }),
);

const EXAMPLES = {
  count: { filter: { status: 'queued', provider: 'openai' }, dry_run: true },
  confirmed: { filter: { q: 'nightly report' }, expected_count: 0 },
};

const bulkCancelDocs = describeRoute({
  tags: ['tasks'],
  operationId: 'cancelTasks',
  summary: 'Cancel every queued and running task matching a filter',
  description:
    'Queued tasks are cancelled at once (their jobs removed); running ones get ' +
    '`cancel_requested_at`, a `cancel_requested` event and their worker is woken, as with ' +
    `the single cancel. Finished tasks are never touched. At most ${BULK_CANCEL_LIMIT} tasks ` +
    'per call, the oldest first (`has_more`). Ask with `dry_run` first, show the count, ' +
    'then send it as `expected_count`: if the matches changed meanwhile nothing happens ' +
    'and the answer is 409 `count_changed` with `details.matched`.',
  requestBody: { required: true, content: jsonContent(BulkCancelBody, EXAMPLES) },
  responses: {
    200: { description: 'what was done (or counted)', content: jsonContent(BulkCancelResult) },
    ...errorResponses(400, 401, 403, 409, 413, 415, 503),
  },
});

export function bulkCancelRoutes(deps: AppDeps, metrics: ApiMetrics) {
  const app = new Hono();

  app.post('/cancel', bulkCancelDocs, async (c) => {
    const body = parseOr400(BulkCancelBody, await readJsonBody(c));
    const outcome = await taskCancelMatching(deps.db, taskFilterOf(body.filter), {
      limit: BULK_CANCEL_LIMIT,
      dryRun: body.dry_run,
      expectedCount: body.expected_count,
    });
    if (outcome.kind === 'count_changed') {
      throw new ApiError(
        409,
        'count_changed',
        `${outcome.matched} tasks match now, not ${body.expected_count}; confirm again`,
        { matched: outcome.matched },
      );
    }
    if (outcome.kind === 'dry_run') return c.json({ matched: outcome.matched });
    // Never reached a worker: this is where they finished.
    if (outcome.cancelled > 0)
      metrics.base.tasksFinished.inc(
        { status: 'cancelled', error_code: 'cancelled' },
        outcome.cancelled,
      );
    return c.json({
      matched: outcome.matched,
      cancelled: outcome.cancelled,
      cancel_requested: outcome.cancelRequested,
      has_more: outcome.hasMore,
    } satisfies v.InferOutput<typeof BulkCancelResult>);
  });

  return app;
}
