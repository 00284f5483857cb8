// End to end through the real processes with the real SDKs talking to fake
// OpenAI and Gemini servers on 127.0.0.1: tool use, the live step log, error
// codes, and how fast a committed status reaches a waiting long-poll.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';
import { startApiProcess, startWorkerProcess, type AgentqProcess } from '../helpers/processes.ts';
import { apiClient, type EventJson } from '../helpers/http-client.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { startFakeGemini } from '../helpers/fake-gemini.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { waitFor } from '../helpers/wait-for.ts';

let tdb: TestDatabase;
let openai: FakeLlmServer;
let gemini: FakeLlmServer;
let api: AgentqProcess & { url: string };
let worker: AgentqProcess;
let client: ReturnType<typeof apiClient>;

beforeAll(async () => {
  tdb = await createTestDatabase();
  [openai, gemini] = await Promise.all([
    startFakeOpenAI({ apiKey: 'sk-test-valid' }),
    startFakeGemini({ apiKey: 'gm-test-valid' }),
  ]);
  const env = {
    DATABASE_URL: tdb.url,
    AGENTQ_DEFAULT_PROVIDER: 'openai',
    OPENAI_API_KEY: 'sk-test-valid',
    OPENAI_BASE_URL: openai.url,
    GOOGLE_API_KEY: 'gm-test-valid',
    GOOGLE_BASE_URL: gemini.url,
    AGENTQ_POLL_INTERVAL_MS: '200',
    AGENTQ_RETRY_BASE_MS: '100',
  };
  [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
  client = apiClient(api.url);
});

afterAll(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await Promise.all([openai?.close(), gemini?.close()]);
  await tdb?.drop();
});

const types = (events: EventJson[]) => events.map((e) => e.type);

describe.each([
  ['openai', () => openai],
  ['google', () => gemini],
])('provider %s through the real SDK', (provider, fake) => {
  it('uses the calculator and answers with its result; the step log has every step', async () => {
    const prompt = `What is 17 * 23? Use the calculator. (${provider} a)`;
    const { body } = await client.submit({ input: { prompt }, config: { provider } });
    const done = await client.waitDone(body.id);
    expect(done.status).toBe('completed');
    expect(done.result?.answer).toBe('The answer is 391.');
    expect(done.usage.llm_calls).toBe(2);
    expect(done.usage.tool_calls).toBe(1);
    expect(done.usage.input_tokens).toBeGreaterThan(0);
    expect(done.usage.output_tokens).toBeGreaterThan(0);
    const events = await client.events(body.id);
    expect(types(events)).toEqual([
      'status',
      'status',
      'llm_call',
      'tool_call',
      'tool_result',
      'llm_call',
      'message',
      'answer',
      'status',
    ]);
    const llm = events.find((e) => e.type === 'llm_call')!.data;
    expect(llm).toMatchObject({ provider, step: 1, tool_calls: 1 });
    expect(typeof llm.latency_ms).toBe('number');
    const requests = fake().requests.filter((r) => r.prompt.includes(`(${provider} a)`));
    expect(requests).toHaveLength(2);
    expect(requests.every((r) => r.rejected === undefined)).toBe(true);
    expect(requests[1]!.toolResults).toEqual([
      { name: 'calculator', content: { output: { expression: '17 * 23', result: 391 } } },
    ]);
  });

  it('runs parallel tool calls and recovers from malformed arguments', async () => {
    const par = await client.submit({
      input: { prompt: `[parallel] What are 2 + 3 and 4 * 5? (${provider} b)` },
      config: { provider },
    });
    const bad = await client.submit({
      input: { prompt: `[badargs] What is 6 * 7? (${provider} b)` },
      config: { provider },
    });
    const [p, b] = await Promise.all([client.waitDone(par.body.id), client.waitDone(bad.body.id)]);
    expect(p.status).toBe('completed');
    expect(p.result?.answer).toBe('The answers are 5 and 20.');
    expect(p.usage.tool_calls).toBe(2);
    expect(b.status).toBe('completed');
    expect(b.result?.answer).toBe('The answer is 42.');
    const badEvents = await client.events(bad.body.id);
    const firstResult = badEvents.find((e) => e.type === 'tool_result')!.data;
    expect(typeof firstResult.error).toBe('string'); // fed back to the model, not thrown
  });

  it('fails with provider_auth on a 401 and never completes', async () => {
    const { body } = await client.submit({
      input: { prompt: `[fail=401] hello (${provider} c)` },
      config: { provider },
    });
    const done = await client.waitDone(body.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'provider_auth', retryable: false });
    expect(done.attempts).toBe(1);
    // The step log ends in the failure, and nothing the model never said is in it.
    const events = await client.events(body.id);
    expect(events.at(-1)).toMatchObject({ type: 'status', data: { to: 'failed' } });
    expect(types(events)).not.toContain('answer');
    expect(types(events)).not.toContain('tool_call');
  });

  it('fails with max_steps_exceeded when the model keeps calling tools', async () => {
    const { body } = await client.submit({
      input: { prompt: `[loop] What is 1 + 1? (${provider} d)` },
      config: { provider, max_steps: 3 },
    });
    const done = await client.waitDone(body.id);
    expect(done.status).toBe('failed');
    expect(done.error?.code).toBe('max_steps_exceeded');
    expect(done.usage.llm_calls).toBe(3);
  });
});

describe('visibility', () => {
  it('a running task shows its steps while it runs', async () => {
    const { body } = await client.submit({
      input: { prompt: '[delay=700] What is 9 * 9? (visible)' },
    });
    // The first model turn takes 0.7 s, the tool runs, the second turn takes 0.7 s:
    // the tool's result must be readable while the task is still running.
    const seen = await waitFor(
      async () => {
        const [task, events] = await Promise.all([client.get(body.id), client.events(body.id)]);
        return task.status === 'running' && types(events).includes('tool_result')
          ? events
          : undefined;
      },
      { timeoutMs: 20_000, what: 'a running task with a tool_result event' },
    );
    expect(types(seen)).not.toContain('answer');
    expect((await client.waitDone(body.id)).status).toBe('completed');
  });

  it('a long-poll returns within 1 s of the worker committing the final status', async () => {
    const { body } = await client.submit({
      input: { prompt: '[delay=1500] Say hello. (latency)' },
    });
    await waitFor(async () => (await client.get(body.id)).status === 'running', {
      what: 'the task to start',
    });
    const task = await client.get(body.id, 30);
    const returnedAt = Date.now();
    expect(task.status).toBe('completed');
    // finished_at is set inside the committing transaction (same machine clock).
    const lag = returnedAt - Date.parse(task.finished_at!);
    expect(lag).toBeLessThan(1000);
  });
});
