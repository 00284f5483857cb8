// Tracing off (the default): startTracing loads no SDK, the code paths keep
// the API's no-op tracer, nothing is stored on the task, and a task with a
// tool call still runs from submit to completed.
import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing } from '../../shared/tracing.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const KEY = 'sk-test-valid-0123456789';
const silent = pino({ level: 'silent' });
let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: KEY });
  const config = testConfig({
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    AGENTQ_POLL_INTERVAL_MS: '100',
  });
  api = await startTestApi(tdb, config);
  worker = await startWorker({ config, pool: tdb.pool, connectionString: tdb.url, logger: silent });
});

afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await fake?.close();
  await tdb?.drop();
});

describe('tracing off', () => {
  it.each([
    ['no endpoint', {}],
    [
      'OTEL_SDK_DISABLED',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' },
    ],
    [
      'OTEL_TRACES_EXPORTER=none',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' },
    ],
  ])('%s: startTracing imports no SDK', async (_name, env) => {
    let loaded = false;
    const tracing = await startTracing(env, {
      serviceName: 'agentq-test',
      logger: silent,
      load: () => {
        loaded = true;
        throw new Error('the SDK must not be loaded');
      },
    });
    expect(tracing.enabled).toBe(false);
    expect(loaded).toBe(false);
    await tracing.shutdown();
  });

  it('the API and the worker run a task with a tool call; no span records, no trace context is stored', async () => {
    // What every code path falls back to: the global tracer, a no-op here.
    expect(trace.getTracer('agentq').startSpan('probe').isRecording()).toBe(false);

    const res = await api.post(
      '/v1/tasks',
      {
        input: { prompt: 'What is 6 * 7?' },
        config: { tools: ['calculator'] },
        // Even a client's trace context is not kept when this API does not trace.
      },
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    );
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const task = await waitFor(
      async () => {
        const t = (await (await api.get(`/v1/tasks/${id}`)).json()) as {
          status: string;
          result: { answer: string } | null;
          usage: { tool_calls: number };
        };
        return ['completed', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      },
      { timeoutMs: 30_000, what: 'the task to finish' },
    );
    expect(task.status).toBe('completed');
    expect(task.result?.answer).toBe('The answer is 42.');
    expect(task.usage.tool_calls).toBe(1);

    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .select('trace_context')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.trace_context).toBeNull();
  });
});
