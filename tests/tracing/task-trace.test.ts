// Tracing on: an in-memory exporter registered in this test process (its own
// process: vitest forks per file), the API through app.request(), a real
// worker in-process against the fake OpenAI server. One trace must show the
// submit's request span, each attempt's invoke_agent span under it, and the
// chat and execute_tool spans under that, with the GenAI attributes.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { scriptedModel } from '../helpers/scripted-model.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const KEY = 'sk-test-valid-0123456789';
const MODEL = 'gpt-4o-mini';
// Fixed token counts for the traced prompts, so the span attributes can be checked exactly.
const TOOL_TURN = { inputTokens: 41, outputTokens: 9 };
const ANSWER_TURN = { inputTokens: 57, outputTokens: 12 };

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;

beforeAll(async () => {
  // Global: the API takes the global tracer (its default); the worker is given one.
  provider.register();
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: KEY });
  const scripted = scriptedModel();
  fake.setHandler(async (request) => {
    const reply = await scripted(request);
    if (!request.prompt.includes('(traced)')) return reply;
    if ('toolCalls' in reply) return { ...reply, usage: TOOL_TURN };
    if ('text' in reply) return { ...reply, usage: ANSWER_TURN };
    return reply;
  });
  const config = testConfig({
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    AGENTQ_POLL_INTERVAL_MS: '100',
    AGENTQ_RETRY_BASE_MS: '10',
    AGENTQ_RETRY_MAX_MS: '50',
  });
  api = await startTestApi(tdb, config);
  worker = await startWorker({
    config,
    pool: tdb.pool,
    connectionString: tdb.url,
    logger: pino({ level: 'silent' }),
    tracer: provider.getTracer('agentq-test'),
  });
});

afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await fake?.close();
  await tdb?.drop();
  await provider.shutdown();
});

beforeEach(() => exporter.reset());

interface TaskJson {
  id: string;
  status: string;
  usage: { input_tokens: number; output_tokens: number };
}

async function finished(id: string): Promise<TaskJson> {
  return waitFor(
    async () => {
      const res = await api.app.request(`/v1/tasks/${id}`);
      const task = (await res.json()) as TaskJson;
      return ['completed', 'failed', 'cancelled'].includes(task.status) ? task : undefined;
    },
    { timeoutMs: 30_000, what: `task ${id} to finish` },
  );
}

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((s) => s.name === name);
const traceId = (s: ReadableSpan) => s.spanContext().traceId;
const spanId = (s: ReadableSpan) => s.spanContext().spanId;
const parentId = (s: ReadableSpan) => s.parentSpanContext?.spanId;
/** The finished invoke_agent spans of one task (the span ends after the outcome is written). */
const attemptsOf = (taskId: string, count: number) =>
  waitFor(
    () => {
      const found = named('invoke_agent').filter((s) => s.attributes['agentq.task.id'] === taskId);
      return found.length >= count ? found : undefined;
    },
    { what: `${count} invoke_agent span(s) of ${taskId}` },
  );
const childrenOf = (parent: ReadableSpan) =>
  spans()
    .filter((s) => parentId(s) === spanId(parent))
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);

describe('tracing on', () => {
  it('one trace: submit request → invoke_agent → chat and execute_tool, with GenAI attributes', async () => {
    const res = await api.post('/v1/tasks', {
      input: { prompt: 'What is 6 * 7? (traced)' },
      config: { tools: ['calculator'] },
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const task = await finished(id);
    expect(task.status).toBe('completed');

    // The API's span of the submit, named by the route pattern.
    const submit = named('POST /v1/tasks');
    expect(submit).toHaveLength(1);
    expect(submit[0]!.kind).toBe(SpanKind.SERVER);
    expect(submit[0]!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/v1/tasks',
      'http.response.status_code': 201,
    });
    // Reads are named by their pattern, never by the task id in the path.
    const read = named('GET /v1/tasks/:id')[0]!;
    expect(read.attributes).toMatchObject({
      'http.route': '/v1/tasks/:id',
      'url.path': `/v1/tasks/${id}`,
    });

    // The worker's attempt is a child of the submit, in the same trace.
    const [attempt] = await attemptsOf(id, 1);
    expect(traceId(attempt!)).toBe(traceId(submit[0]!));
    expect(parentId(attempt!)).toBe(spanId(submit[0]!));
    expect(attempt!.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': MODEL,
      'agentq.task.attempt': 1,
      'agentq.task.outcome': 'completed',
      'agentq.task.status': 'completed',
    });
    expect(attempt!.status.code).toBe(SpanStatusCode.UNSET);

    // Under it, in order: the model asks for the calculator, the tool runs, the model answers.
    const steps = childrenOf(attempt!);
    expect(steps.map((s) => s.name)).toEqual([
      `chat ${MODEL}`,
      'execute_tool calculator',
      `chat ${MODEL}`,
    ]);
    const [ask, tool, answer] = steps as [ReadableSpan, ReadableSpan, ReadableSpan];
    for (const chat of [ask, answer]) {
      expect(chat.kind).toBe(SpanKind.CLIENT);
      expect(traceId(chat)).toBe(traceId(submit[0]!));
      expect(chat.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': MODEL,
        'gen_ai.response.model': MODEL,
      });
    }
    expect(ask.attributes).toMatchObject({
      'gen_ai.usage.input_tokens': TOOL_TURN.inputTokens,
      'gen_ai.usage.output_tokens': TOOL_TURN.outputTokens,
      'gen_ai.response.finish_reasons': ['tool_calls'],
    });
    expect(answer.attributes).toMatchObject({
      'gen_ai.usage.input_tokens': ANSWER_TURN.inputTokens,
      'gen_ai.usage.output_tokens': ANSWER_TURN.outputTokens,
      'gen_ai.response.finish_reasons': ['stop'],
    });
    // The spans' tokens are the task's usage.
    expect(task.usage).toMatchObject({
      input_tokens: TOOL_TURN.inputTokens + ANSWER_TURN.inputTokens,
      output_tokens: TOOL_TURN.outputTokens + ANSWER_TURN.outputTokens,
    });

    // The tool span names the call the step log names.
    const events = (await (await api.get(`/v1/tasks/${id}/events`)).json()) as {
      data: Array<{ type: string; data: { id?: string; name?: string } }>;
    };
    const call = events.data.find((e) => e.type === 'tool_call')!.data;
    expect(tool.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'calculator',
      'gen_ai.tool.call.id': call.id,
    });
    expect(tool.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('a failed provider call is a chat span with status ERROR, and so is its attempt', async () => {
    const res = await api.post('/v1/tasks', {
      input: { prompt: '[fail=503] hello (traced)' },
      max_attempts: 1,
    });
    const { id } = (await res.json()) as { id: string };
    expect((await finished(id)).status).toBe('failed');

    const [attempt] = await attemptsOf(id, 1);
    const [chat] = childrenOf(attempt!);
    expect(chat!.name).toBe(`chat ${MODEL}`);
    expect(chat!.status.code).toBe(SpanStatusCode.ERROR);
    expect(chat!.attributes['error.type']).toBe('provider_unavailable');
    expect(chat!.events.map((e) => e.name)).toContain('exception');
    expect(attempt!.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt!.attributes).toMatchObject({
      'error.type': 'provider_unavailable',
      'agentq.task.outcome': 'failed',
      'agentq.task.status': 'failed',
    });
  });

  it('every attempt of a retried task joins the submit trace', async () => {
    const res = await api.post('/v1/tasks', {
      input: { prompt: '[fail=503x1] hello again (traced)' },
      max_attempts: 2,
    });
    const { id } = (await res.json()) as { id: string };
    expect((await finished(id)).status).toBe('completed');
    const submit = named('POST /v1/tasks')[0]!;
    const attempts = await attemptsOf(id, 2);
    for (const a of attempts) expect(parentId(a)).toBe(spanId(submit));
    const outcomes = attempts.map((a) => a.attributes['agentq.task.outcome']).sort();
    expect(outcomes).toEqual(['completed', 'retry']);
  });

  it("a client's traceparent is the submit's parent; a batch's tasks all join the batch's trace", async () => {
    const clientTrace = '0af7651916cd43dd8448eb211c80319c';
    const clientSpan = 'b7ad6b7169203331';
    const res = await api.post(
      '/v1/tasks/batch',
      { tasks: [{ input: { prompt: 'one (traced)' } }, { input: { prompt: 'two (traced)' } }] },
      {
        traceparent: `00-${clientTrace}-${clientSpan}-01`,
        tracestate: 'vendor=abc',
        baggage: 'user=someone',
      },
    );
    expect(res.status).toBe(201);
    const { data } = (await res.json()) as { data: Array<{ id: string }> };
    for (const t of data) await finished(t.id);

    const batch = named('POST /v1/tasks/batch')[0]!;
    expect(traceId(batch)).toBe(clientTrace);
    expect(parentId(batch)).toBe(clientSpan);
    for (const t of data) {
      const [attempt] = await attemptsOf(t.id, 1);
      expect(traceId(attempt!)).toBe(clientTrace);
      expect(parentId(attempt!)).toBe(spanId(batch));
    }
    // The row keeps the trace context (tracestate too), never the client's baggage.
    const rows = await tdb.db
      .selectFrom('agentq.tasks')
      .select('trace_context')
      .where(
        'id',
        'in',
        data.map((t) => t.id),
      )
      .execute();
    for (const row of rows) {
      expect(row.trace_context).toEqual({
        traceparent: `00-${clientTrace}-${spanId(batch)}-01`,
        tracestate: 'vendor=abc',
      });
    }
  });

  it('the trace context is stored on the task row, and refusals get spans too', async () => {
    const res = await api.post('/v1/tasks', { input: { prompt: 'stored (traced)' } });
    const { id } = (await res.json()) as { id: string };
    const submit = named('POST /v1/tasks')[0]!;
    const row = await tdb.db
      .selectFrom('agentq.tasks')
      .select('trace_context')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.trace_context).toEqual({
      traceparent: `00-${traceId(submit)}-${spanId(submit)}-01`,
    });
    await finished(id);
    // The column holds a JSON object of headers or nothing (a task kept queued to try it on).
    const later = await api.post('/v1/tasks', {
      input: { prompt: 'later (traced)' },
      run_at: '2999-01-01T00:00:00Z',
    });
    const { id: laterId } = (await later.json()) as { id: string };
    await expect(
      sql`UPDATE agentq.tasks SET trace_context = '"00-x"' WHERE id = ${laterId}`.execute(tdb.db),
    ).rejects.toThrow(/tasks_trace_context_object/);
    expect((await api.post(`/v1/tasks/${laterId}/cancel`, {})).status).toBe(200);

    exporter.reset();
    expect((await api.post('/v1/tasks', { input: {} })).status).toBe(400);
    expect((await api.get('/no/such/route')).status).toBe(404);
    const bad = named('POST /v1/tasks')[0]!;
    expect(bad.attributes['http.response.status_code']).toBe(400);
    // A client error is not the server's: the span's status stays unset.
    expect(bad.status.code).toBe(SpanStatusCode.UNSET);
    // No route matched: the span is named by the method alone, with no http.route.
    const lost = named('GET')[0]!;
    expect(lost.attributes['http.route']).toBeUndefined();
    expect(lost.attributes['http.response.status_code']).toBe(404);
  });
});
