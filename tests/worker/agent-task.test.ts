// The worker runtime in-process (graphile-worker, claim, agent loop, fenced
// outcome) against a fake OpenAI server, tasks submitted through the API
// routes: what reaches the database and the client when a model or provider
// misbehaves.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storableString } from '../../shared/tasks/storable-json.ts';
import { startWorker, type RunningWorker } from '../../worker/worker.ts';
import { startTestApi } from '../helpers/api-harness.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { scriptedModel } from '../helpers/scripted-model.ts';
import { testConfig } from '../helpers/test-config.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { waitFor } from '../helpers/wait-for.ts';

const KEY = 'sk-test-valid-0123456789';
const UGLY_ARGS = '1+\u0000\ud800';
const UGLY_ANSWER = 'done \u0000 and \ud800 and \udc00 end';
const LEAKY = `Unauthorized: Bearer ${KEY} rejected by llm-gw.corp.internal:8443`;

let tdb: TestDatabase;
let fake: FakeLlmServer;
let api: Awaited<ReturnType<typeof startTestApi>>;
let worker: RunningWorker;
const logLines: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  fake = await startFakeOpenAI({ apiKey: KEY });
  const scripted = scriptedModel();
  fake.setHandler((request) => {
    if (request.prompt.includes('(unstorable)')) {
      return request.toolRounds === 0
        ? {
            text: 'let me see \u0000',
            toolCalls: [{ name: 'calculator', arguments: { expression: UGLY_ARGS } }],
          }
        : { text: UGLY_ANSWER };
    }
    if (request.prompt.includes('(leaky)')) return { error: { status: 401, message: LEAKY } };
    return scripted(request);
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
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  worker = await startWorker({
    config,
    pool: tdb.pool,
    connectionString: tdb.url,
    logger: pino({ level: 'info' }, sink),
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
  attempts: number;
  result: { answer: string } | null;
  error: { code: string; message: string; retryable: boolean } | null;
  usage: Record<string, number>;
}
type EventJson = { seq: number; type: string; data: Record<string, unknown> };

async function run(prompt: string, extra: Record<string, unknown> = {}): Promise<TaskJson> {
  const res = await api.post('/v1/tasks', { input: { prompt }, ...extra });
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  return waitFor(
    async () => {
      const task = (await (await api.get(`/v1/tasks/${id}`)).json()) as TaskJson;
      return ['completed', 'failed', 'cancelled'].includes(task.status) ? task : undefined;
    },
    { timeoutMs: 30_000, what: `task ${id} to finish` },
  );
}

async function events(id: string): Promise<EventJson[]> {
  const body = (await (await api.get(`/v1/tasks/${id}/events`)).json()) as { data: EventJson[] };
  return body.data;
}

describe('the worker runtime', () => {
  it('stores any text the model or a tool produces, cleaned; the model still gets the original', async () => {
    const task = await run('Work this out. (unstorable)');
    expect(task.error).toBeNull();
    expect(task.status).toBe('completed');
    expect(task.result).toEqual({ answer: storableString(UGLY_ANSWER) });
    expect(task.result!.answer).toBe('done \ufffd and \ufffd and \ufffd end');

    const log = await events(task.id);
    const of = (type: string) => log.filter((e) => e.type === type).map((e) => e.data);
    expect(of('tool_call')[0]!.arguments).toEqual({ expression: '1+\ufffd\ufffd' });
    expect(String(of('tool_result')[0]!.error)).toContain('\ufffd');
    expect(of('message')[0]!.text).toBe('let me see \ufffd');
    expect(of('answer')[0]!.text).toBe(storableString(UGLY_ANSWER));

    // The model read the tool's error about the original characters.
    const second = fake.requests.filter((r) => r.prompt.includes('(unstorable)'))[1]!;
    const fedBack = JSON.stringify(second.toolResults[0]!.content);
    expect(fedBack).toContain('\\u0000');
    expect(fedBack).not.toContain('\ufffd');
  });

  it('a failed provider call is in the step log, and a final error says it will not be retried', async () => {
    const task = await run('[fail=503] hello (final)', { max_attempts: 2 });
    expect(task.status).toBe('failed');
    expect(task.attempts).toBe(2);
    expect(task.error).toMatchObject({ code: 'provider_unavailable', retryable: false });
    const failedCalls = (await events(task.id)).filter(
      (e) => e.type === 'llm_call' && e.data.error !== undefined,
    );
    expect(failedCalls).toHaveLength(2);
    expect(failedCalls[0]!.data).toMatchObject({
      step: 1,
      provider: 'openai',
      error: { code: 'provider_unavailable', status: 503, retryable: true },
    });
    expect(typeof failedCalls[0]!.data.latency_ms).toBe('number');
    // The first attempt's requeue still said retryable.
    const retry = (await events(task.id)).find((e) => e.type === 'retry')!;
    expect(retry.data.error).toMatchObject({ retryable: true });
  });

  it('counts every tool that ran when max_steps runs out', async () => {
    const task = await run('[loop] What is 1 + 1? (loop)', { config: { max_steps: 3 } });
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('max_steps_exceeded');
    expect(task.usage).toMatchObject({ llm_calls: 3, tool_calls: 3 });
    const results = (await events(task.id)).filter((e) => e.type === 'tool_result');
    expect(results).toHaveLength(3);
  });

  it('a provider error echoing the key and an internal host reaches the client redacted; the log keeps it', async () => {
    const task = await run('hello (leaky)');
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('provider_auth');
    const seen = JSON.stringify([task.error, await events(task.id)]);
    for (const leak of [KEY, 'llm-gw', 'corp.internal', new URL(fake.url).host]) {
      expect(seen).not.toContain(leak);
    }
    expect(logLines.join('')).toContain(LEAKY);
  });
});
