/**
 * GET /v1/tasks/:id/events — the step log, as a JSON page or, with
 * `Accept: text/event-stream`, as a live SSE stream that ends after the task's
 * terminal status event. Streams wake on NOTIFY agentq_event and re-read.
 * A stream holds one of AGENTQ_MAX_STREAMS slots and ends after
 * AGENTQ_STREAM_MAX_S; EventSource then reconnects with Last-Event-ID.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import { parseOr400, queryObject } from '../validation.ts';
import { eventList } from '../../shared/tasks/event-queries.ts';
import { taskFindById } from '../../shared/tasks/task-queries.ts';
import { parseTaskId, TaskIdParams } from './task-id.ts';
import { documentInput, errorResponses, jsonContent } from '../openapi.ts';
import { EventPageSchema } from '../openapi-schemas.ts';
import { isTerminal } from './task-json.ts';
import { DEFAULT_RECHECK_MS, recheckInterval, watchChanges } from './wait-for-change.ts';
import { requestSignal } from '../request-signal.ts';
import type { StreamSlots } from './stream-slots.ts';

const count = (min: number, max: number, description: string) =>
  v.pipe(
    v.string(),
    v.description(description),
    v.regex(/^\d{1,10}$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const EventsQuery = v.strictObject({
  after: v.optional(count(0, 1_000_000_000, 'the events after this seq'), '0'),
  limit: v.optional(count(1, 1000, 'page size (JSON only)'), '100'),
});

// SSE comments keep proxies from closing an idle stream.
export const KEEPALIVE_MS = 15_000;
// The `retry:` hint sent first: how long EventSource waits before reconnecting.
export const RECONNECT_HINT_MS = 1000;

const eventJson = (e: Awaited<ReturnType<typeof eventList>>[number]) => ({
  seq: e.seq,
  type: e.type,
  data: e.data,
  created_at: e.created_at.toISOString(),
});

// What the OpenAPI document says of the route (the handler parses its input itself).
const listTaskEventsDocs = [
  describeRoute({
    operationId: 'listTaskEvents',
    tags: ['events'],
    summary: "A task's step log, as a page or a live stream",
    description:
      'With `Accept: text/event-stream` the log streams as server-sent events (`id` = seq, ' +
      "`event` = type, `data` = the event JSON), ending after the task's terminal status " +
      'event or after AGENTQ_STREAM_MAX_S; the `retry:` hint makes EventSource reconnect ' +
      'and resume with `Last-Event-ID`.',
    parameters: [
      {
        in: 'header',
        name: 'Last-Event-ID',
        required: false,
        schema: { type: 'string', pattern: '^\\d{1,9}$' },
        description: 'stream only: resume after this seq (overrides `after`)',
      },
    ],
    responses: {
      200: {
        description: 'a page of events, or the stream',
        content: {
          ...jsonContent(EventPageSchema),
          'text/event-stream': {
            schema: { type: 'string', description: 'server-sent events, one per Event' },
          },
        },
      },
      ...errorResponses(400, 401, 403, 404, 429, 503),
    },
  }),
  documentInput('param', TaskIdParams),
  documentInput('query', EventsQuery),
] as const;

export function eventRoutes(deps: AppDeps, streams: StreamSlots) {
  const { db, listener, config } = deps;
  const recheckMs = deps.recheckMs ?? DEFAULT_RECHECK_MS;
  const app = new Hono();

  app.get('/:id/events', ...listTaskEventsDocs, async (c) => {
    const id = parseTaskId(c.req.param('id'));
    const q = parseOr400(EventsQuery, queryObject(c.req.url));
    const task = await taskFindById(db, id);
    if (!task) throw new ApiError(404, 'not_found', `no task ${id}`);

    if (!(c.req.header('accept') ?? '').includes('text/event-stream')) {
      const events = await eventList(db, id, q.after, q.limit);
      return c.json({ data: events.map(eventJson), next_after: events.at(-1)?.seq ?? q.after });
    }

    const lastEventId = c.req.header('last-event-id');
    let after = q.after;
    if (lastEventId !== undefined) {
      if (!/^\d{1,9}$/.test(lastEventId))
        throw new ApiError(400, 'invalid_request', 'Last-Event-ID must be an event seq');
      after = Number(lastEventId);
    }
    const release = streams.acquire();
    const stop = requestSignal(c.req.raw.signal, deps.shutdownSignal);
    const endsAt = Date.now() + config.streamMaxS * 1000;
    return streamSSE(
      c,
      async (stream) => {
        stream.onAbort(stop.abort);
        const watch = watchChanges(listener, ['agentq_event', 'agentq_task'], id);
        try {
          // EventSource waits this long before reconnecting (with Last-Event-ID).
          await stream.write(`retry: ${RECONNECT_HINT_MS}\n\n`);
          let lastRead = 0;
          let lastPing = Date.now();
          let mustRead = true;
          while (!stop.signal.aborted && !stream.aborted) {
            if (Date.now() >= endsAt) {
              // The client reconnects with Last-Event-ID and resumes where this left off.
              await stream.write(': stream lifetime reached; reconnect with Last-Event-ID\n\n');
              break;
            }
            // Clear the flag before reading, so a change during the read wakes the wait.
            const changed = watch.takeChanged();
            if (mustRead || changed) {
              mustRead = false;
              lastRead = Date.now();
              const events = await eventList(db, id, after, 500);
              for (const e of events) {
                await stream.writeSSE({
                  id: String(e.seq),
                  event: e.type,
                  data: JSON.stringify(eventJson(e)),
                });
                after = e.seq;
              }
              if (events.length === 500) {
                mustRead = true;
                continue; // more to send before waiting
              }
              const current = await taskFindById(db, id);
              const caughtUp = current !== undefined && current.last_event_seq <= after;
              if (!current || (isTerminal(current.status) && caughtUp)) break;
              if (events.length > 0 || !caughtUp) {
                mustRead = true;
                continue;
              }
            }
            const nextRead = lastRead + recheckInterval(listener, recheckMs);
            const nextPing = lastPing + KEEPALIVE_MS;
            await watch.wait(Math.min(nextRead, nextPing, endsAt) - Date.now(), stop.signal);
            const now = Date.now();
            if (now >= nextPing && !stop.signal.aborted) {
              await stream.write(': keepalive\n\n');
              lastPing = now;
            }
            if (now >= nextRead) mustRead = true;
          }
        } finally {
          watch.close();
          stop.dispose();
          release();
        }
      },
      async (err) => {
        deps.logger.warn({ err, task_id: id }, 'event stream ended by an error');
      },
    );
  });

  return app;
}
