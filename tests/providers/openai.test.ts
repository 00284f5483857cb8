/**
 * What only the openai provider does: the JSON-string arguments (and what
 * happens when they are not JSON), Retry-After headers, the key rules for
 * local servers, and malformed 200s.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { createOpenAIProvider } from '../../worker/providers/openai.ts';
import type { ChatMessage, CompletionResponse } from '../../worker/providers/provider.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeOpenAI } from '../helpers/fake-openai.ts';
import { API_KEY, calculatorTool, conversation, rejectionOf } from './targets.ts';

describe('openai provider', () => {
  let fake: FakeLlmServer;
  const signal = new AbortController().signal;
  const provider = () => createOpenAIProvider({ apiKey: API_KEY, baseURL: fake.url });
  const complete = (messages: ChatMessage[]) =>
    provider().complete({
      model: 'gpt-4o-mini',
      messages,
      tools: [calculatorTool],
      temperature: 0.2,
      signal,
    });
  const withAnswer = (messages: ChatMessage[], r: CompletionResponse): ChatMessage[] => [
    ...messages,
    { role: 'assistant', content: r.text, toolCalls: r.toolCalls },
  ];

  beforeAll(async () => {
    fake = await startFakeOpenAI({ apiKey: API_KEY });
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('sends the chat-completions request shape', async () => {
    await complete(conversation('Say hello'));
    const body = fake.requests[0]!.body as Record<string, unknown>;
    expect(fake.requests[0]!.path).toBe('/v1/chat/completions');
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(body).toMatchObject({
      model: 'gpt-4o-mini',
      temperature: 0.2,
      tool_choice: 'auto',
      messages: [
        { role: 'system', content: 'You are a careful assistant.' },
        { role: 'user', content: 'Say hello' },
      ],
      tools: [
        {
          type: 'function',
          function: { name: 'calculator', parameters: calculatorTool.parameters },
        },
      ],
    });
  });

  it('reports unparsable arguments via argumentsError and echoes them back verbatim', async () => {
    const raw = '{"expression": "17 * 23"';
    fake.setHandler(() => ({ toolCalls: [{ name: 'calculator', arguments: raw }] }));
    const messages = conversation('What is 17 * 23?');
    const first = await complete(messages);
    const call = first.toolCalls[0]!;
    expect(call.arguments).toBeUndefined();
    expect(call.rawArguments).toBe(raw);
    expect(call.argumentsError).toMatch(/JSON/);

    fake.reset();
    await complete([
      ...withAnswer(messages, first),
      {
        role: 'tool',
        toolCallId: call.id,
        name: call.name,
        result: { error: 'the arguments are not valid JSON' },
      },
    ]);
    const wire = (fake.requests[0]!.body as { messages: Array<Record<string, unknown>> }).messages;
    expect(fake.requests[0]!.rejected).toBeUndefined();
    expect(wire[2]).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: call.id, type: 'function', function: { name: 'calculator', arguments: raw } },
      ],
    });
    expect(wire[3]).toEqual({
      role: 'tool',
      tool_call_id: call.id,
      content: JSON.stringify({ error: 'the arguments are not valid JSON' }),
    });
  });

  it('reads empty arguments as an empty object', async () => {
    fake.setHandler(() => ({ toolCalls: [{ name: 'current_time', arguments: '' }] }));
    const { toolCalls } = await complete(conversation('time?'));
    expect(toolCalls[0]).toMatchObject({ arguments: {}, rawArguments: '' });
    expect(toolCalls[0]?.argumentsError).toBeUndefined();
  });

  it('reports finish_reason as sent', async () => {
    expect((await complete(conversation('hi'))).finishReason).toBe('stop');
    expect((await complete(conversation('What is 1 + 1?'))).finishReason).toBe('tool_calls');
  });

  it('prefers retry-after-ms, and reads retry-after as an HTTP date', async () => {
    fake.setHandler(() => ({ error: { status: 429, retryAfterMs: 1500, retryAfter: 9 } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({ retryAfterMs: 1500 });

    const date = new Date(Date.now() + 30_000).toUTCString();
    fake.setHandler(() => ({ error: { status: 503, retryAfter: date } }));
    const err = (await rejectionOf(complete(conversation('hi')))) as TaskFailure;
    expect(err.code).toBe('provider_unavailable');
    expect(err.retryAfterMs).toBeGreaterThan(25_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('fails without a key or base URL, before any request', async () => {
    const err = await rejectionOf(
      createOpenAIProvider({}).complete({
        model: 'm',
        messages: conversation('hi'),
        tools: [],
        signal,
      }),
    );
    expect(err).toBeInstanceOf(TaskFailure);
    expect(err).toMatchObject({ code: 'provider_not_configured', retryable: false });
  });

  it('sends a placeholder key to a base URL that needs none (Ollama, vLLM)', async () => {
    const open = await startFakeOpenAI();
    try {
      const local = createOpenAIProvider({ baseURL: open.url });
      const response = await local.complete({
        model: 'llama3',
        messages: conversation('hi'),
        tools: [],
        signal,
      });
      expect(response.text).toBe('Echo: hi');
      expect(open.requests[0]?.headers.authorization).toMatch(/^Bearer \S+/);
    } finally {
      await open.close();
    }
  });

  it('treats a 200 without choices as retryable', async () => {
    fake.setHandler(() => ({
      raw: {
        body: { id: 'x', object: 'chat.completion', created: 0, model: 'gpt-4o-mini', choices: [] },
      },
    }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_unavailable',
      retryable: true,
    });
  });

  it('marks a reply without usage as unreported instead of a measured zero', async () => {
    fake.setHandler(() => ({
      raw: {
        body: {
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'local-llm',
          choices: [
            { index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' },
          ],
        },
      },
    }));
    const response = await complete(conversation('hi'));
    expect(response.usage).toEqual({ inputTokens: 0, outputTokens: 0, reported: false });
  });

  it('treats an answer withheld by the content filter as rejected', async () => {
    fake.setHandler(() => ({
      raw: {
        body: {
          id: 'x',
          object: 'chat.completion',
          created: 0,
          model: 'gpt-4o-mini',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: null },
              finish_reason: 'content_filter',
            },
          ],
        },
      },
    }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_rejected',
    });
  });

  it('maps a body that is not JSON to provider_unavailable', async () => {
    fake.setHandler(() => ({ raw: { status: 502, body: '<html>Bad gateway</html>' } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_unavailable',
      status: 502,
    });
  });
});
