// The API's waiters wake for every task a multi-id notification names, and
// for the empty "re-read" payload (migrations/0005); SSE streams get events
// that one statement wrote for several tasks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pino } from 'pino';
import { uuidv7 } from 'uuidv7';
import { NotificationListener } from '../../shared/db/notification-listener.ts';
import { watchChanges } from '../../api/tasks/wait-for-change.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
let listener: NotificationListener;
let api: Awaited<ReturnType<typeof startTestApi>>;
beforeAll(async () => {
  tdb = await createTestDatabase();
  listener = new NotificationListener({
    connectionString: tdb.url,
    channels: ['agentq_task', 'agentq_event', 'agentq_cancel'],
    logger: pino({ level: 'silent' }),
    applicationName: 'agentq-test-wake',
  });
  await listener.start();
  api = await startTestApi(tdb);
});
afterAll(async () => {
  await api?.stop();
  await listener?.stop();
  await tdb?.drop();
});

// Each wait is 60 s long: only a notification wakes it within the deadline.
const WAKE_DEADLINE_MS = 4000;

/** Starts a wait per id; returns which have woken so far. */
function waitAll(channel: string, ids: string[]) {
  const woken = new Set<string>();
  const watches = ids.map((id) => {
    const w = watchChanges(listener, [channel], id);
    void w.wait(60_000, new AbortController().signal).then((why) => {
      if (why === 'change') woken.add(id);
    });
    return w;
  });
  return { woken, cancel: () => watches.forEach((w) => w.close()) };
}

const notify = (channel: string, payload: string) =>
  sql`SELECT pg_notify(${channel}, ${payload})`.execute(tdb.db);

describe('waking on coalesced notifications', () => {
  it('wakes the waiter of every id a comma-separated payload names, and no other', async () => {
    const [a, b, c, other] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    const w = waitAll('agentq_task', [a, b, c, other]);
    try {
      await notify('agentq_task', `${a},${b},${c}`);
      await waitFor(() => w.woken.size >= 3, { timeoutMs: WAKE_DEADLINE_MS, what: 'a, b and c' });
      expect([...w.woken].sort()).toEqual([a, b, c].sort());
    } finally {
      w.cancel();
    }
  });

  it('wakes every waiter on an empty payload', async () => {
    const ids = [uuidv7(), uuidv7()];
    const w = waitAll('agentq_event', ids);
    try {
      await notify('agentq_event', '');
      await waitFor(() => w.woken.size === 2, { timeoutMs: WAKE_DEADLINE_MS, what: 'both' });
    } finally {
      w.cancel();
    }
  });

  it('does not treat an empty agentq_cancel as "cancel everything"', async () => {
    const id = uuidv7();
    const marker = uuidv7();
    let cancelled = false;
    let markerSeen = false;
    const unsubscribe = listener.subscribe('agentq_cancel', id, () => (cancelled = true));
    const unMarker = listener.subscribe('agentq_cancel', marker, () => (markerSeen = true));
    try {
      await notify('agentq_cancel', '');
      // Delivered after the empty one: once it is here, the empty one was handled.
      await notify('agentq_cancel', marker);
      await waitFor(() => markerSeen, { timeoutMs: WAKE_DEADLINE_MS, what: 'the marker' });
      expect(cancelled).toBe(false);
      await notify('agentq_cancel', `${uuidv7()},${id}`);
      await waitFor(() => cancelled, { timeoutMs: WAKE_DEADLINE_MS, what: 'the named cancel' });
    } finally {
      unsubscribe();
      unMarker();
    }
  });

  it('SSE streams of several tasks each get the events one statement wrote for all of them', async () => {
    const res = await api.post('/v1/tasks/batch', {
      tasks: [1, 2, 3].map((i) => ({ input: { prompt: `sse ${i}` } })),
    });
    const ids = ((await res.json()) as { data: { id: string }[] }).data.map((t) => t.id);
    const streams = await Promise.all(
      ids.map(async (id) => {
        const abort = new AbortController();
        const r = await api.app.request(`/v1/tasks/${id}/events`, {
          headers: { accept: 'text/event-stream' },
          signal: abort.signal,
        });
        const reader = r.body!.getReader();
        const state = { text: '' };
        void (async () => {
          const decoder = new TextDecoder();
          for (;;) {
            const { value, done } = await reader
              .read()
              .catch(() => ({ value: undefined, done: true }));
            if (done) return;
            state.text += decoder.decode(value, { stream: true });
          }
        })();
        return { state, close: () => abort.abort() };
      }),
    );
    try {
      // Each stream has sent the first status event and is now waiting.
      await waitFor(() => streams.every((s) => s.state.text.includes('event: status')), {
        what: 'the first events',
      });
      await sql`INSERT INTO agentq.task_events (task_id, seq, type, data)
                SELECT id, 2, 'message', '{"text": "together"}' FROM unnest(${ids}::uuid[]) id`.execute(
        tdb.db,
      );
      await sql`UPDATE agentq.tasks SET last_event_seq = 2 WHERE id = ANY(${ids}::uuid[])`.execute(
        tdb.db,
      );
      await waitFor(() => streams.every((s) => s.state.text.includes('"together"')), {
        timeoutMs: WAKE_DEADLINE_MS,
        what: 'every stream to get its event',
      });
    } finally {
      streams.forEach((s) => s.close());
    }
  });
});
