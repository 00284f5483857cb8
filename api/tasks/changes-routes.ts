/**
 * GET /v1/changes: the dashboard's live list, as server-sent events. It
 * follows NOTIFY agentq_task (a task created or changing status; the payload
 * names the ids) and sends `task` (the task in the summary view) for each
 * changed task matching the list's filters, `stats` (GET /v1/stats) at most
 * once a second after a change, and `resync` when changes may have been
 * missed (an empty payload, a LISTEN reconnect, or a client reconnecting
 * with Last-Event-ID): the client then re-reads the list. The ids heard
 * during one read are read together, in one query.
 */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { describeRoute } from 'hono-openapi';
import * as v from 'valibot';
import type { AppDeps } from '../app-deps.ts';
import { documentInput, errorResponses } from '../openapi.ts';
import type { QueueStatsReader } from '../queue-stats-reader.ts';
import { requestSignal } from '../request-signal.ts';
import { parseOr400, queryObject } from '../validation.ts';
import { taskSummariesByIds } from '../../shared/tasks/task-queries.ts';
import { taskSummaryJson } from '../../shared/tasks/task-summary.ts';
import { KEEPALIVE_MS, RECONNECT_HINT_MS } from './event-routes.ts';
import type { StreamSlots } from './stream-slots.ts';
import { FILTER_FIELDS, taskFilterOf } from './task-filter.ts';
import { watchEveryTask } from './wait-for-change.ts';

const ChangesQuery = v.strictObject(FILTER_FIELDS);

/** `stats` events are at least this far apart. */
export const STATS_EVERY_MS = 1000;
/** Ids read per query. */
const READ_CHUNK = 500;

const changesDocs = [
  describeRoute({
    tags: ['queue'],
    operationId: 'streamChanges',
    summary: 'Live changes of the task list, as server-sent events',
    description:
      'Takes the filters of `GET /v1/tasks`. Events: `task` (a TaskSummary, when a task ' +
      'matching the filters is created or changes status), `stats` (the `GET /v1/stats` ' +
      'object: first, then at most once a second after a change), `resync` (changes may ' +
      'have been missed: re-read the list). Open the stream before reading the list. It ' +
      'ends after AGENTQ_STREAM_MAX_S; EventSource reconnects (the `retry:` hint) and, ' +
      'sending Last-Event-ID, gets a `resync` first. Holds one of AGENTQ_MAX_STREAMS slots.',
    responses: {
      200: {
        description: 'the stream',
        content: {
          'text/event-stream': {
            schema: { type: 'string', description: 'server-sent events: task, stats, resync' },
          },
        },
      },
      ...errorResponses(400, 401, 403, 429, 503),
    },
  }),
  documentInput('query', ChangesQuery),
] as const;

export function changesRoutes(deps: AppDeps, streams: StreamSlots, stats: QueueStatsReader) {
  const { db, listener, config } = deps;
  const app = new Hono();

  app.get('/changes', ...changesDocs, async (c) => {
    const filter = taskFilterOf(parseOr400(ChangesQuery, queryObject(c.req.url)));
    const reconnected = c.req.header('last-event-id') !== undefined;
    const release = streams.acquire();
    const stop = requestSignal(c.req.raw.signal, deps.shutdownSignal);
    const endsAt = Date.now() + config.streamMaxS * 1000;
    return streamSSE(
      c,
      async (stream) => {
        stream.onAbort(stop.abort);
        // Subscribed before anything is read, so no change falls between.
        const feed = watchEveryTask(listener, 'agentq_task');
        let seq = 0;
        const send = (event: string, data: unknown) =>
          stream.writeSSE({ id: String(++seq), event, data: JSON.stringify(data) });
        try {
          await stream.write(`retry: ${RECONNECT_HINT_MS}\n\n`);
          if (reconnected) await send('resync', { reason: 'reconnected' });
          let statsSince: number | undefined = Date.now(); // stats are sent first
          let lastStats = 0;
          let lastPing = Date.now();
          while (!stop.signal.aborted && !stream.aborted) {
            if (Date.now() >= endsAt) {
              await stream.write(': stream lifetime reached; reconnect\n\n');
              break;
            }
            const heardAt = Date.now();
            const { ids, resync } = feed.take();
            if (resync) await send('resync', { reason: 'changes may have been missed' });
            if (resync || ids.length > 0) statsSince ??= heardAt;
            for (let i = 0; i < ids.length; i += READ_CHUNK) {
              const rows = await taskSummariesByIds(db, ids.slice(i, i + READ_CHUNK), filter);
              for (const row of rows) await send('task', taskSummaryJson(row));
            }
            if (statsSince !== undefined && Date.now() - lastStats >= STATS_EVERY_MS) {
              // Any read started after the change was heard will do (shared with other streams).
              await send('stats', await stats.read(statsSince));
              lastStats = Date.now();
              statsSince = undefined;
            }
            const nextStats = statsSince === undefined ? Infinity : lastStats + STATS_EVERY_MS;
            const nextPing = lastPing + KEEPALIVE_MS;
            await feed.wait(Math.min(nextStats, nextPing, endsAt) - Date.now(), stop.signal);
            if (Date.now() >= nextPing && !stop.signal.aborted) {
              await stream.write(': keepalive\n\n');
              lastPing = Date.now();
            }
          }
        } finally {
          feed.close();
          stop.dispose();
          release();
        }
      },
      async (err) => {
        deps.logger.warn({ err }, 'change stream ended by an error');
      },
    );
  });

  return app;
}
