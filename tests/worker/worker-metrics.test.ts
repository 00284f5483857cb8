// The worker's metrics, from a worker run in-process against a fake OpenAI
// server, tasks submitted through the API routes. API and worker share one
// registry, as under `npm start`; the worker's own listener serves it too.
// The counters must agree exactly with what the tasks' rows say they did.
import http from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../shared/metrics/metrics-registry.ts';
import { startMetricsServer } from '../../worker/metrics-server.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { parsePromText, type Exposition } from '../helpers/prom-text.ts';
import { scriptedModel } from '../helpers/scripted-model.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const KEY = 'sk-test-valid-0123456789';
const TOKEN = 'worker-metrics-token-0123456789';
const MADE_UP_TOOL = 'lookup_0190a0b1_c2d3_7e4f_8a9b_0c1d2e3f4a5b';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;
const ids: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: KEY });
  const scripted = scriptedModel();
  fake.setHandler((request) => {
    // The model calls a tool the task does not have, under an id-like name.
    if (request.prompt.includes('(made up)'))
      return request.toolRounds === 0
        ? { toolCalls: [{ name: MADE_UP_TOOL, arguments: {} }] }
        : { text: 'no such tool' };
    return scripted(request);
  });
  const env = {
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: KEY,
    OPENAI_BASE_URL: fake.url,
    AGENTQ_POLL_INTERVAL_MS: '100',
    AGENTQ_RETRY_BASE_MS: '10',
    AGENTQ_RETRY_MAX_MS: '50',
    AGENTQ_WORKER_CONCURRENCY: '3',
  };
  const metrics = createMetricsRegistry();
  api = await startTestApi(tdb, testConfig(env), { metrics, metricsCacheMs: 0 });
  worker = await startWorker({
    // The worker's listener needs the token; the API here is an open one.
    config: testConfig({ ...env, AGENTQ_API_TOKENS: TOKEN, AGENTQ_METRICS_PORT: '0' }),
    pool: tdb.pool,
    connectionString: tdb.url,
    logger: pino({ level: 'silent' }),
    metrics,
  });
});

afterAll(async () => {
  await worker?.stop();
  await api?.stop();
  await fake?.close();
  await tdb?.drop();
});

interface TaskJson {
  id: string;
  status: string;
  error: { code: string } | null;
  usage: { input_tokens: number; output_tokens: number; llm_calls: number; tool_calls: number };
}

async function submit(prompt: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await api.post('/v1/tasks', { input: { prompt }, ...extra });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  ids.push(id);
  return id;
}

async function finished(id: string): Promise<TaskJson> {
  return waitFor(
    async () => {
      const task = (await (await api.get(`/v1/tasks/${id}`)).json()) as TaskJson;
      return ['completed', 'failed', 'cancelled'].includes(task.status) ? task : undefined;
    },
    { timeoutMs: 30_000, what: `task ${id} to finish` },
  );
}

/** GET the worker's /metrics with node:http (fetch may not set Host). */
function get(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; type?: string; text: string }>((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text }),
        );
      })
      .on('error', reject);
  });
}

async function scrapeWorker(): Promise<{ text: string; metrics: Exposition }> {
  const res = await get(worker.metricsUrl!, { authorization: `Bearer ${TOKEN}` });
  expect(res.status).toBe(200);
  expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { text: res.text, metrics: parsePromText(res.text) };
}

const histogramCount = (m: Exposition, name: string, labels: Record<string, string> = {}) =>
  m.sum(`${name}_count`, labels);

describe('worker metrics', () => {
  it('shows running tasks and concurrency per worker while a task runs', async () => {
    const id = await submit('[hang] wait for me');
    await waitFor(
      async () =>
        (await scrapeWorker()).metrics.find('agentq_worker_running_tasks', {
          worker_id: worker.id,
        })[0]?.value === 1,
      { what: 'the running gauge to show the hanging task' },
    );
    const { metrics } = await scrapeWorker();
    expect(metrics.find('agentq_worker_concurrency', { worker_id: worker.id })[0]?.value).toBe(3);
    expect((await api.post(`/v1/tasks/${id}/cancel`, {})).status).toBe(202);
    expect((await finished(id)).status).toBe('cancelled');
    await waitFor(
      async () =>
        (await scrapeWorker()).metrics.sum('agentq_tasks_finished_total', {
          status: 'cancelled',
          error_code: 'cancelled',
        }) === 1,
      { what: 'the cancelled task to be counted' },
    );
    await waitFor(
      async () =>
        (await scrapeWorker()).metrics.find('agentq_worker_running_tasks')[0]?.value === 0,
      { what: 'the running gauge to drop back to 0' },
    );
  });

  it('counts outcomes, model calls, tokens, tool calls and times, as the task rows say', async () => {
    const done = await finished(await submit('What is 6 * 7?'));
    const failed = await finished(await submit('[fail=503] hello', { max_attempts: 2 }));
    const madeUp = await finished(await submit('Try a tool (made up)'));
    expect([done.status, failed.status, madeUp.status]).toEqual([
      'completed',
      'failed',
      'completed',
    ]);
    expect(done.usage.tool_calls).toBe(1);
    expect(failed.error?.code).toBe('provider_unavailable');

    const all = [done, failed, madeUp];
    const total = (k: keyof TaskJson['usage']) => all.reduce((n, t) => n + t.usage[k], 0);
    const m = await waitFor(
      async () => {
        const { metrics } = await scrapeWorker();
        return metrics.sum('agentq_tasks_finished_total', { status: 'completed' }) === 2 &&
          metrics.sum('agentq_tasks_finished_total', { status: 'failed' }) === 1
          ? metrics
          : undefined;
      },
      { what: 'the outcomes to be counted' },
    );
    expect(m.types.get('agentq_task_duration_seconds')).toBe('histogram');
    expect(m.sum('agentq_tasks_finished_total', { status: 'completed', error_code: 'none' })).toBe(
      2,
    );
    expect(
      m.sum('agentq_tasks_finished_total', {
        status: 'failed',
        error_code: 'provider_unavailable',
      }),
    ).toBe(1);

    // Model calls: the successful ones are the tasks' llm_calls; each failed one by its code.
    const llm = 'agentq_llm_call_duration_seconds';
    expect(histogramCount(m, llm, { provider: 'openai', outcome: 'ok' })).toBe(total('llm_calls'));
    expect(histogramCount(m, llm, { provider: 'openai', outcome: 'provider_unavailable' })).toBe(2);
    expect(m.find(`${llm}_count`, { outcome: 'ok' })[0]!.labels.model).toBe('gpt-4o-mini');
    expect(m.sum(`${llm}_sum`)).toBeGreaterThan(0);
    expect(m.sum('agentq_llm_tokens_total', { token_type: 'input' })).toBe(total('input_tokens'));
    expect(m.sum('agentq_llm_tokens_total', { token_type: 'output' })).toBe(total('output_tokens'));
    expect(total('input_tokens')).toBeGreaterThan(0);

    // Tool calls: by tool and outcome; a name the task lacks is `unknown`, never the model's text.
    expect(m.sum('agentq_tool_calls_total')).toBe(total('tool_calls'));
    expect(m.sum('agentq_tool_calls_total', { tool: 'calculator', outcome: 'ok' })).toBe(1);
    expect(m.sum('agentq_tool_calls_total', { tool: 'unknown', outcome: 'error' })).toBe(1);

    // One duration per attempt, by the status it left: the failed task retried once first.
    const duration = 'agentq_task_duration_seconds';
    expect(histogramCount(m, duration, { status: 'completed' })).toBe(2);
    expect(histogramCount(m, duration, { status: 'failed' })).toBe(1);
    expect(histogramCount(m, duration, { status: 'queued' })).toBe(1);
    // Every claim waited a measured time: one per attempt (the cancelled one's included).
    expect(histogramCount(m, duration)).toBe(5);
    expect(histogramCount(m, 'agentq_task_queue_wait_seconds')).toBe(5);
  });

  it('serves the same registry on the API, and never a task id', async () => {
    const res = await api.get('/metrics');
    expect(res.status).toBe(200);
    const text = await res.text();
    const onApi = parsePromText(text);
    expect(onApi.find('agentq_worker_concurrency')).toHaveLength(1);
    expect(onApi.sum('agentq_tasks_submitted_total')).toBe(ids.length);
    // Node's process metrics are there once (one registry, one set).
    expect(onApi.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(onApi.types.has('nodejs_eventloop_lag_seconds')).toBe(true);

    const { text: fromWorker } = await scrapeWorker();
    for (const t of [text, fromWorker]) {
      for (const id of ids) expect(t).not.toContain(id);
      expect(t).not.toContain(MADE_UP_TOOL);
      expect(t).not.toMatch(UUID);
    }
  });

  it("the worker's listener needs the token, and answers only GET /metrics", async () => {
    const url = worker.metricsUrl!;
    expect((await get(url)).status).toBe(401);
    expect((await get(url, { authorization: 'Bearer not-the-token-1' })).status).toBe(401);
    const other = await get(url.replace('/metrics', '/v1/tasks'), {
      authorization: `Bearer ${TOKEN}`,
    });
    expect(other.status).toBe(404);
    expect(JSON.parse(other.text)).toMatchObject({ error: { code: 'not_found' } });
  });
});

describe('a metrics listener without tokens', () => {
  it('answers loopback Hosts only; AGENTQ_METRICS_PUBLIC-style public skips the token', async () => {
    const { registry } = createMetricsRegistry({ processMetrics: false });
    const open = await startMetricsServer({
      registry,
      host: '127.0.0.1',
      port: 0,
      tokens: [],
      public: false,
      logger: pino({ level: 'silent' }),
    });
    const pub = await startMetricsServer({
      registry,
      host: '127.0.0.1',
      port: 0,
      tokens: [TOKEN],
      public: true,
      logger: pino({ level: 'silent' }),
    });
    try {
      expect((await get(open.url)).status).toBe(200);
      expect((await get(open.url, { host: 'attacker.example' })).status).toBe(403);
      const res = await get(pub.url);
      expect(res.status).toBe(200);
      expect(parsePromText(res.text).types.get('agentq_webhook_deliveries_total')).toBe('counter');
    } finally {
      await open.stop();
      await pub.stop();
    }
  });
});
