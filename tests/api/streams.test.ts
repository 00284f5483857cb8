// Item 11 (API part): idle streams and long-polls cost the database little
// while LISTEN is healthy (the re-check interval is injectable and used), one
// process holds at most AGENTQ_MAX_STREAMS of them (429 too_many_streams with
// Retry-After beyond), and an SSE stream ends after AGENTQ_STREAM_MAX_S with a
// `retry:` hint so the client resumes with Last-Event-ID.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../../api/app-deps.ts';
import {
  DEFAULT_RECHECK_MS,
  RECHECK_WHILE_DISCONNECTED_MS,
  recheckInterval,
} from '../../api/tasks/wait-for-change.ts';
import type { Config } from '../../shared/config.ts';
import { createDb, createPool } from '../../shared/db/database.ts';
import { errorOf, startTestApi } from '../helpers/api-harness.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
const stops: Array<() => Promise<void>> = [];
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  for (const stop of stops) await stop();
  await tdb?.drop();
});

/** The app over its own pool, counting every connection checkout (one per query). */
async function startApp(config: Config, extra: Pick<AppDeps, 'recheckMs'> = {}) {
  const pool = createPool({ connectionString: tdb.url, applicationName: 'agentq-test-streams' });
  let checkouts = 0;
  pool.on('acquire', () => void (checkouts += 1));
  const api = await startTestApi({ ...tdb, pool, db: createDb(pool) }, config, extra);
  const { app, listener } = api;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await api.stop();
    await pool.end();
  };
  stops.push(stop);
  const submit = async () => {
    const res = await app.request('/v1/tasks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { prompt: 'hi' } }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  /** Opens an SSE stream and reads it as a client would; `close()` hangs up. */
  const stream = (id: string, headers: Record<string, string> = {}) => {
    const res = Promise.resolve(
      app.request(`/v1/tasks/${id}/events`, {
        headers: { accept: 'text/event-stream', ...headers },
      }),
    );
    let received = '';
    // Only a stream is read here; an error answer stays readable for the test.
    const reader = res.then((r) => (r.status === 200 ? r.body?.getReader() : undefined));
    const done = (async () => {
      const r = await reader;
      if (!r) return received;
      const decoder = new TextDecoder();
      for (;;) {
        const chunk = await r.read().catch(() => ({ done: true, value: undefined }));
        if (chunk.done) return received;
        received += decoder.decode(chunk.value, { stream: true });
      }
    })();
    return {
      res,
      /** The whole body, once the server ends the stream. */
      text: () => done,
      close: async () => void (await (await reader)?.cancel()),
    };
  };
  return { app, listener, submit, stream, checkouts: () => checkouts, stop };
}

/** The whole SSE body, or a failure if the server has not ended it by the deadline. */
async function textBefore(text: Promise<string>, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the stream did not end within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([text, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('re-reading while idle', () => {
  it('re-checks every 60 s while LISTEN is connected, every 5 s while it is down', async () => {
    const { listener, stop } = await startApp(testConfig());
    expect(recheckInterval(listener, DEFAULT_RECHECK_MS)).toBe(60_000);
    await stop();
    expect(listener.connected).toBe(false);
    expect(recheckInterval(listener, DEFAULT_RECHECK_MS)).toBe(RECHECK_WHILE_DISCONNECTED_MS);
    expect(RECHECK_WHILE_DISCONNECTED_MS).toBe(5_000);
  });

  it('an idle stream re-reads at the injected interval, and a NOTIFY still wakes it at once', async () => {
    const fast = await startApp(testConfig(), { recheckMs: 200 });
    const id = await fast.submit();
    const s = fast.stream(id);
    expect((await s.res).status).toBe(200);
    const start = fast.checkouts();
    // Each re-read is two queries (events after the last seq, then the task).
    await waitFor(() => fast.checkouts() - start >= 6, { timeoutMs: 5000, what: 're-reads' });
    await s.close();

    const slow = await startApp(testConfig(), { recheckMs: 600_000 });
    const id2 = await slow.submit();
    const s2 = slow.stream(id2);
    expect((await s2.res).status).toBe(200);
    const started = Date.now();
    const cancel = await slow.app.request(`/v1/tasks/${id2}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(200);
    const text = await textBefore(s2.text(), 5000);
    expect(text).toContain('"to":"cancelled"');
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('AGENTQ_MAX_STREAMS', () => {
  it('answers 429 too_many_streams with Retry-After beyond the cap, and frees a slot when a stream ends', async () => {
    const { app, submit, stream } = await startApp(testConfig({ AGENTQ_MAX_STREAMS: '2' }));
    const [a, b, c] = [await submit(), await submit(), await submit()];
    const s1 = stream(a);
    const s2 = stream(b);
    expect((await s1.res).status).toBe(200);
    expect((await s2.res).status).toBe(200);

    const third = await stream(c).res;
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await errorOf(third)).code).toBe('too_many_streams');
    const poll = await app.request(`/v1/tasks/${c}?wait=5`);
    expect(poll.status).toBe(429);
    expect((await errorOf(poll)).code).toBe('too_many_streams');

    // Reads that do not wait hold no slot: a plain read, a long-poll on a finished task.
    expect((await app.request(`/v1/tasks/${c}`)).status).toBe(200);
    expect((await app.request(`/v1/tasks/${c}/cancel`, { method: 'POST' })).status).toBe(200);
    expect((await app.request(`/v1/tasks/${c}?wait=5`)).status).toBe(200);

    // The client hangs up: its slot comes back.
    await s1.close();
    const again = await waitFor(
      async () => {
        const s = stream(b);
        return (await s.res).status === 200 ? s : undefined;
      },
      { timeoutMs: 5000, what: 'a freed slot' },
    );
    await again.close();
    await s2.close();
  });

  it('counts a waiting long-poll, and gives its slot back when it answers', async () => {
    const { app, submit, stream } = await startApp(testConfig({ AGENTQ_MAX_STREAMS: '1' }));
    const id = await submit();
    const poll = await app.request(`/v1/tasks/${id}?wait=0.3`);
    expect(poll.status).toBe(200);
    const s = stream(id);
    expect((await s.res).status).toBe(200);
    const refused = await app.request(`/v1/tasks/${id}?wait=1`);
    expect(refused.status).toBe(429);
    await s.close();
  });
});

describe('AGENTQ_STREAM_MAX_S', () => {
  it('ends a stream after its lifetime with a retry hint; the client resumes from Last-Event-ID', async () => {
    const { app, submit, stream } = await startApp(testConfig({ AGENTQ_STREAM_MAX_S: '1' }));
    const id = await submit();
    const first = await textBefore(stream(id).text(), 10_000);
    expect(first).toMatch(/^retry: \d+$/m);
    expect([...first.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([1]);
    expect(first).toContain(': stream lifetime reached');

    expect((await app.request(`/v1/tasks/${id}/cancel`, { method: 'POST' })).status).toBe(200);
    const resumed = await textBefore(stream(id, { 'last-event-id': '1' }).text(), 10_000);
    expect([...resumed.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual([2]);
    expect(resumed).toContain('"to":"cancelled"');
  });
});
