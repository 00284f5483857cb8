/**
 * One behaviour suite for both network providers: the real SDKs over real
 * HTTP against fakes that speak each wire format and check request shapes.
 */
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import type { ChatMessage, CompletionResponse, Provider } from '../../worker/providers/provider.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { calculatorTool, closedPortUrl, conversation, rejectionOf, targets } from './targets.ts';

describe.each(targets)('$name provider', (target) => {
  let fake: FakeLlmServer;
  let provider: Provider;
  const signal = new AbortController().signal;
  const complete = (messages: ChatMessage[], p: Provider = provider, s: AbortSignal = signal) =>
    p.complete({
      model: target.model,
      messages,
      tools: [calculatorTool],
      temperature: 0,
      signal: s,
    });
  const withAnswer = (messages: ChatMessage[], response: CompletionResponse): ChatMessage[] => [
    ...messages,
    {
      role: 'assistant',
      content: response.text,
      toolCalls: response.toolCalls,
      providerData: response.providerData,
    },
  ];

  beforeAll(async () => {
    fake = await target.startFake();
    provider = target.provider(fake.url);
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('returns a text answer with usage and the model', async () => {
    const response = await complete(conversation('Say hello'));
    expect(response.text).toBe('Echo: Say hello');
    expect(response.toolCalls).toEqual([]);
    expect(response.usage.inputTokens).toBeGreaterThan(0);
    expect(response.usage.outputTokens).toBeGreaterThan(0);
    expect(response.model).toBe(target.model);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.system).toBe('You are a careful assistant.');
  });

  it('maps usage from the wire exactly', async () => {
    fake.setHandler(() => ({ text: 'ok', usage: { inputTokens: 123, outputTokens: 45 } }));
    const response = await complete(conversation('count me'));
    expect(response.usage).toEqual({ inputTokens: 123, outputTokens: 45, reported: true });
  });

  it('sends the temperature and the tool definition the API accepts', async () => {
    await complete(conversation('Say hello'));
    const request = fake.requests[0]!;
    expect(request.rejected).toBeUndefined();
    expect(request.tools).toEqual(['calculator']);
  });

  it('round-trips a tool call: call, result, answer', async () => {
    const messages = conversation('What is 17 * 23?');
    const first = await complete(messages);
    expect(first.text).toBeNull();
    expect(first.toolCalls).toHaveLength(1);
    const call = first.toolCalls[0]!;
    expect(call).toMatchObject({ name: 'calculator', arguments: { expression: '17 * 23' } });
    expect(call.id).toMatch(/^call_/);
    expect(JSON.parse(call.rawArguments)).toEqual({ expression: '17 * 23' });
    expect(call.argumentsError).toBeUndefined();

    const next: ChatMessage[] = [
      ...withAnswer(messages, first),
      { role: 'tool', toolCallId: call.id, name: call.name, result: { output: 391 } },
    ];
    const second = await complete(next);
    expect(second.text).toBe('The answer is 391.');
    expect(second.toolCalls).toEqual([]);

    const wire = fake.requests[1]!;
    expect(wire.rejected).toBeUndefined();
    expect(wire.toolResults).toEqual([{ name: 'calculator', content: { output: 391 } }]);
  });

  it('handles parallel tool calls: both answered in the next request', async () => {
    const messages = conversation('[parallel] What are 17 * 23 and (2+3)^2?');
    const first = await complete(messages);
    expect(first.toolCalls.map((c) => c.arguments)).toEqual([
      { expression: '17 * 23' },
      { expression: '(2+3)^2' },
    ]);
    const [a, b] = first.toolCalls;
    expect(a!.id).not.toBe(b!.id);

    const next: ChatMessage[] = [
      ...withAnswer(messages, first),
      { role: 'tool', toolCallId: a!.id, name: a!.name, result: { output: 391 } },
      { role: 'tool', toolCallId: b!.id, name: b!.name, result: { output: 25 } },
    ];
    const second = await complete(next);
    expect(fake.requests[1]?.rejected).toBeUndefined();
    expect(second.text).toBe('The answers are 391 and 25.');
  });

  it('is refused by the fake (as by the real API) when a tool call goes unanswered', async () => {
    const messages = conversation('What is 17 * 23?');
    const first = await complete(messages);
    const err = await rejectionOf(
      complete([...withAnswer(messages, first), { role: 'user', content: 'never mind' }]),
    );
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err).toMatchObject({ code: 'provider_rejected', status: 400, retryable: false });
    expect(fake.requests[1]?.rejected).toBeDefined();
  });

  it('sends no tools field when no tools are offered', async () => {
    const response = await provider.complete({
      model: target.model,
      messages: conversation('What is 17 * 23?'),
      tools: [],
      signal,
    });
    expect(response.text).toBe('Echo: What is 17 * 23?');
    expect(fake.requests[0]?.rejected).toBeUndefined();
    expect(fake.requests[0]?.tools).toEqual([]);
  });

  it.each([
    { status: 400, code: 'provider_rejected' },
    { status: 401, code: 'provider_auth' },
    { status: 403, code: 'provider_auth' },
    { status: 404, code: 'provider_rejected' },
    { status: 500, code: 'provider_unavailable' },
    { status: 503, code: 'provider_unavailable' },
  ])('maps HTTP $status to $code', async ({ status, code }) => {
    fake.setHandler(() => ({ error: { status } }));
    const err = await rejectionOf(complete(conversation('hi')));
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err).toMatchObject({ code, status });
    expect((err as TaskFailure).message).toMatch(new RegExp(`^${target.name}: `));
  });

  it('maps a rate limit (429) to a retryable failure with the Retry-After delay', async () => {
    fake.setHandler(() => ({ error: { status: 429, retryAfter: 12 } }));
    const err = await rejectionOf(complete(conversation('hi')));
    expect(err).toMatchObject({
      code: 'provider_unavailable',
      retryable: true,
      status: 429,
      retryAfterMs: 12_000,
    });
  });

  it('maps exhausted quota to provider_quota_exhausted, not a retry', async () => {
    fake.setHandler(() => ({ error: { status: 429, code: 'insufficient_quota' } }));
    const err = await rejectionOf(complete(conversation('hi')));
    expect(err).toMatchObject({ code: 'provider_quota_exhausted', retryable: false, status: 429 });
  });

  it('maps a wrong API key to provider_auth', async () => {
    const wrongKey = target.provider(fake.url, { apiKey: 'wrong-key' });
    const err = await rejectionOf(complete(conversation('hi'), wrongKey));
    expect(err).toMatchObject({ code: 'provider_auth', retryable: false });
    expect(fake.requests[0]?.rejected).toBeDefined();
  });

  it('maps a refused connection to provider_unavailable', async () => {
    const url = await closedPortUrl(target.name === 'openai' ? '/v1' : '');
    const err = await rejectionOf(complete(conversation('hi'), target.provider(url)));
    expect(err).toMatchObject({ code: 'provider_unavailable', retryable: true });
    expect(err).toHaveProperty('status', undefined);
  });

  it('maps a connection reset to provider_unavailable', async () => {
    fake.setHandler(() => ({ reset: true }));
    const err = await rejectionOf(complete(conversation('hi')));
    expect(err).toMatchObject({ code: 'provider_unavailable', retryable: true });
  });

  it('does not retry inside the SDK: one request per failed call', async () => {
    fake.setHandler(() => ({ error: { status: 500 } }));
    await rejectionOf(complete(conversation('hi')));
    fake.setHandler(() => ({ error: { status: 429, retryAfter: 0 } }));
    await rejectionOf(complete(conversation('hi')));
    expect(fake.requests).toHaveLength(2);
  });

  it('rejects promptly with the signal reason on abort, and the fake sees the client go', async () => {
    fake.setHandler(() => ({ hang: true }));
    const controller = new AbortController();
    const reason = new Error('cancelled by test');
    const pending = rejectionOf(complete(conversation('hang on'), provider, controller.signal));
    await fake.waitFor((requests) => requests.length === 1);
    const abortedAt = performance.now();
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    await fake.waitFor((requests) => requests[0]?.aborted === true);
  });

  it('rejects at once with the reason when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort('gone');
    expect(await rejectionOf(complete(conversation('hi'), provider, controller.signal))).toBe(
      'gone',
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('leaves no abort listeners behind on the caller signal (long runs would pile them up)', async () => {
    const { signal: long } = new AbortController();
    for (let i = 0; i < 12; i++) await complete(conversation('hi'), provider, long);
    expect(getEventListeners(long, 'abort')).toHaveLength(0);
  });

  it('turns its own request timeout into a retryable provider_unavailable', async () => {
    fake.setHandler(() => ({ hang: true }));
    const impatient = target.provider(fake.url, { requestTimeoutMs: 150 });
    const err = await rejectionOf(complete(conversation('slow'), impatient));
    expect(err).toMatchObject({ code: 'provider_unavailable', retryable: true });
    await fake.waitFor((requests) => requests[0]?.aborted === true);
  });
});
