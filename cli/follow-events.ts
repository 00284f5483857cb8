/**
 * Follows a task's step log over the API's SSE stream until the task's
 * terminal status. The stream is resumed with Last-Event-ID whenever it ends
 * early (the API's stream lifetime) or drops (a network error, an API
 * restart), and an event already seen is never yielded twice.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { TERMINAL_STATUSES, type TaskStatus } from '../shared/db/schema.ts';
import { isTransient, type ApiClient, type TaskEvent } from './api-client.ts';
import { CliError, EXIT } from './exit-codes.ts';

export interface FollowOptions {
  /** Yield the events after this seq (0: from the start). */
  after?: number;
  signal?: AbortSignal;
  /** Told each time a dropped connection is about to be retried. */
  onReconnect?: (reason: string) => void;
  /** How long reconnecting may keep failing before giving up (default 30 s). */
  giveUpAfterMs?: number;
}

/** True for the `status` event that moves a task into a terminal status. */
export const isTerminalEvent = (e: TaskEvent) =>
  e.type === 'status' && TERMINAL_STATUSES.includes(e.data.to as TaskStatus);

export async function* followEvents(
  client: ApiClient,
  id: string,
  options: FollowOptions = {},
): AsyncGenerator<TaskEvent> {
  const { signal, giveUpAfterMs = 30_000 } = options;
  let last = options.after ?? 0;
  let retryMs = 1000;
  let connectedOnce = false;
  let failingSince: number | undefined;
  let finished = false;
  for (;;) {
    let res: Response;
    try {
      res = await client.openEventStream(id, last, signal);
    } catch (err) {
      // A first connection that fails is the user's to fix (wrong URL, no
      // token, no such task); later ones are the connection dropping.
      if (signal?.aborted || !(connectedOnce || isBusy(err)) || !isTransient(err)) throw err;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > giveUpAfterMs) throw err;
      options.onReconnect?.((err as Error).message.split('\n')[0] ?? 'failed');
      await delay(retryMs, undefined, { signal });
      continue;
    }
    connectedOnce = true;
    let received = 0;
    const messages = res
      .body!.pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (retryMs = ms) }));
    try {
      for await (const message of messages) {
        const event = parseEvent(message.data);
        if (event.seq <= last) continue; // sent again after a reconnect: already yielded
        last = event.seq;
        received += 1;
        failingSince = undefined;
        if (isTerminalEvent(event)) finished = true;
        yield event;
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof CliError) throw err;
      // The body broke off mid-stream: resume after the last event seen.
      failingSince ??= Date.now();
      if (Date.now() - failingSince > giveUpAfterMs) {
        throw new CliError(
          `lost the event stream from ${client.url} and could not resume it: ${describe(err)}`,
          EXIT.connection,
        );
      }
      options.onReconnect?.(describe(err));
      await delay(retryMs, undefined, { signal });
      continue;
    }
    // The API ends the stream after the terminal status (and what came with it).
    if (finished) return;
    // Otherwise it ended early (its AGENTQ_STREAM_MAX_S lifetime): resume at once,
    // pausing only if the stream brought nothing.
    if (received === 0) await delay(retryMs, undefined, { signal });
  }
}

function isBusy(err: unknown): boolean {
  return isTransient(err) && (err as CliError).exitCode === EXIT.api;
}

function parseEvent(data: string): TaskEvent {
  try {
    const event = JSON.parse(data) as TaskEvent;
    if (typeof event.seq === 'number' && typeof event.type === 'string') return event;
  } catch {
    // reported below
  }
  throw new CliError(
    `the event stream sent something that is not an event: ${data.slice(0, 200)}`,
    EXIT.api,
  );
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const own = err instanceof Error ? err.message : String(err);
  return cause?.message ?? cause?.code ?? own;
}
