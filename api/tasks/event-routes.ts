/**
 * GET /v1/tasks/:id/events — the step log, as a JSON page or, with
 * `Accept: text/event-stream`, as a live SSE stream that ends after the task's
 * terminal status event. Streams wake on NOTIFY agentq_event and re-read.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import * as v from 'valibot';
import type { AppDeps } from '../app-deps.ts';
import { ApiError } from '../errors.ts';
import { parseOr400, queryObject } from '../validation.ts';
import { eventList } from '../../shared/tasks/event-queries.ts';
import { taskFindById } from '../../shared/tasks/task-queries.ts';
import { parseTaskId } from './task-id.ts';
import { isTerminal } from './task-json.ts';
import { waitForChange } from './wait-for-change.ts';

const count = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d{1,9}$/, `must be a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const EventsQuery = v.strictObject({
  after: v.optional(count(0, 1_000_000_000), '0'),
  limit: v.optional(count(1, 1000), '100'),
});

// SSE comments keep proxies from closing an idle stream.
const KEEPALIVE_MS = 15_000;

const eventJson = (e: Awaited<ReturnType<typeof eventList>>[number]) => ({
  seq: e.seq,
  type: e.type,
  data: e.data,
  created_at: e.created_at.toISOString(),
});

export function eventRoutes(deps: AppDeps) {
  const { db, listener } = deps;
  const app = new Hono();

  app.get('/:id/events', async (c) => {
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
    const stop = AbortSignal.any([c.req.raw.signal, deps.shutdownSignal]);
    return streamSSE(c, async (stream) => {
      let lastPing = Date.now();
      while (!stop.aborted && !stream.aborted) {
        // Subscribe before reading so an event committed in between still wakes us.
        const wait = waitForChange(
          listener,
          ['agentq_event', 'agentq_task'],
          id,
          KEEPALIVE_MS,
          stop,
        );
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
          wait.cancel();
          continue; // more to send before waiting
        }
        const current = await taskFindById(db, id);
        const caughtUp = current !== undefined && current.last_event_seq <= after;
        if (!current || (isTerminal(current.status) && caughtUp)) {
          wait.cancel();
          break;
        }
        if (events.length > 0 || !caughtUp) {
          wait.cancel();
          continue;
        }
        await wait.promise;
        if (Date.now() - lastPing >= KEEPALIVE_MS) {
          await stream.write(': keepalive\n\n');
          lastPing = Date.now();
        }
      }
    });
  });

  return app;
}
