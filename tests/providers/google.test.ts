/**
 * What only the google provider does: the model turn echoed back verbatim,
 * one function turn per parallel call, generated call ids, schema clean-up,
 * safety blocks and Gemini's own error details.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { createGoogleProvider, toGeminiSchema } from '../../worker/providers/google.ts';
import type {
  ChatMessage,
  CompletionResponse,
  ToolDefinition,
} from '../../worker/providers/provider.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { startFakeGemini } from '../helpers/fake-gemini.ts';
import { API_KEY, calculatorTool, conversation, rejectionOf } from './targets.ts';

type Contents = Array<{ role: string; parts: Array<Record<string, unknown>> }>;

describe('google provider', () => {
  let fake: FakeLlmServer;
  const signal = new AbortController().signal;
  const provider = () => createGoogleProvider({ apiKey: API_KEY, baseUrl: fake.url });
  const complete = (messages: ChatMessage[], tools: ToolDefinition[] = [calculatorTool]) =>
    provider().complete({ model: 'gemini-2.0-flash', messages, tools, temperature: 0.3, signal });
  const withAnswer = (messages: ChatMessage[], r: CompletionResponse): ChatMessage[] => [
    ...messages,
    { role: 'assistant', content: r.text, toolCalls: r.toolCalls, providerData: r.providerData },
  ];
  const body = (i: number) =>
    fake.requests[i]!.body as { contents: Contents } & Record<string, unknown>;
  const candidate = (content: unknown, finishReason = 'STOP') => ({
    raw: {
      body: { candidates: [{ content, finishReason, index: 0 }], modelVersion: 'gemini-2.0-flash' },
    },
  });

  beforeAll(async () => {
    fake = await startFakeGemini({ apiKey: API_KEY });
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('sends the generateContent request shape, schema cleaned for Gemini', async () => {
    await complete(conversation('Say hello'));
    const request = fake.requests[0]!;
    expect(request.path).toBe('/v1beta/models/gemini-2.0-flash:generateContent');
    expect(request.headers['x-goog-api-key']).toBe(API_KEY);
    expect(request.rejected).toBeUndefined();
    expect(body(0)).toMatchObject({
      contents: [{ role: 'user', parts: [{ text: 'Say hello' }] }],
      systemInstruction: { parts: [{ text: 'You are a careful assistant.' }] },
      generationConfig: { temperature: 0.3 },
      tools: [
        {
          functionDeclarations: [
            {
              name: 'calculator',
              parameters: {
                type: 'object',
                properties: { expression: { type: 'string', description: 'e.g. 17 * 23' } },
                required: ['expression'],
              },
            },
          ],
        },
      ],
    });
    const sent = JSON.stringify(body(0).tools);
    expect(sent).not.toContain('$schema');
    expect(sent).not.toContain('additionalProperties');
  });

  it('sends a parameterless tool without a schema (Gemini rejects empty OBJECT schemas)', async () => {
    const clock: ToolDefinition = {
      name: 'current_time',
      description: 'Now.',
      parameters: { type: 'object', properties: {}, additionalProperties: false },
    };
    await complete(conversation('Say hello'), [clock]);
    expect(fake.requests[0]!.rejected).toBeUndefined();
    expect(body(0).tools).toEqual([
      { functionDeclarations: [{ name: 'current_time', description: 'Now.' }] },
    ]);
  });

  it('the fake refuses the JSON-Schema keywords the provider strips', async () => {
    fake.setHandler(() => ({ text: 'unused' }));
    const res = await fetch(`${fake.url}/v1beta/models/m:generateContent`, {
      method: 'POST',
      headers: { 'x-goog-api-key': API_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({
        contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
        tools: [
          { functionDeclarations: [{ name: 'calculator', parameters: calculatorTool.parameters }] },
        ],
      }),
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('Unknown name');
  });

  it('converts JSON Schema to the Gemini Schema subset, recursively', () => {
    expect(
      toGeminiSchema({
        $schema: 'x',
        type: 'object',
        additionalProperties: false,
        properties: {
          tags: { type: 'array', items: { type: 'string', $comment: 'drop', const: 'a' } },
          note: { type: ['string', 'null'], minLength: 1 },
          pick: { anyOf: [{ type: 'number', exclusiveMinimum: 0 }, { type: 'string' }] },
        },
        required: ['tags'],
      }),
    ).toEqual({
      type: 'object',
      properties: {
        tags: { type: 'array', items: { type: 'string', enum: ['a'] } },
        note: { type: 'string', nullable: true, minLength: 1 },
        pick: { anyOf: [{ type: 'number' }, { type: 'string' }] },
      },
      required: ['tags'],
    });
  });

  it('sends all results of a parallel call in one function turn, after the echoed model turn', async () => {
    const messages = conversation('[parallel] What are 17 * 23 and 2 + 3?');
    const first = await complete(messages);
    expect(first.finishReason).toBe('STOP');
    expect(first.toolCalls.map((c) => c.id)).toEqual(['call_1', 'call_2']);
    const [a, b] = first.toolCalls;
    await complete([
      ...withAnswer(messages, first),
      { role: 'tool', toolCallId: a!.id, name: a!.name, result: { output: 391 } },
      { role: 'tool', toolCallId: b!.id, name: b!.name, result: { output: 5 } },
    ]);
    expect(fake.requests[1]!.rejected).toBeUndefined();
    expect(body(1).contents.slice(1)).toEqual([
      {
        role: 'model',
        parts: [
          { functionCall: { name: 'calculator', args: { expression: '17 * 23' } } },
          { functionCall: { name: 'calculator', args: { expression: '2 + 3' } } },
        ],
      },
      {
        role: 'function',
        parts: [
          { functionResponse: { name: 'calculator', response: { output: 391 } } },
          { functionResponse: { name: 'calculator', response: { output: 5 } } },
        ],
      },
    ]);
  });

  it('echoes the model turn verbatim, parts it does not model included', async () => {
    const modelTurn = {
      role: 'model',
      parts: [
        {
          functionCall: { name: 'calculator', args: { expression: '1+1' } },
          thoughtSignature: 'c2lnbmF0dXJl',
        },
      ],
    };
    fake.setHandler(() => candidate(modelTurn));
    const messages = conversation('What is 1+1?');
    const first = await complete(messages);
    fake.setHandler(() => ({ text: 'ok' }));
    const call = first.toolCalls[0]!;
    await complete([
      ...withAnswer(messages, first),
      { role: 'tool', toolCallId: call.id, name: call.name, result: { output: 2 } },
    ]);
    expect(body(1).contents[1]).toEqual(modelTurn);
  });

  it('numbers call ids after the calls already in the run', async () => {
    const messages = conversation('[loop] What is 1 + 1?');
    const first = await complete(messages);
    const call = first.toolCalls[0]!;
    const second = await complete([
      ...withAnswer(messages, first),
      { role: 'tool', toolCallId: call.id, name: call.name, result: { output: 2 } },
    ]);
    expect([call.id, second.toolCalls[0]?.id]).toEqual(['call_1', 'call_2']);
  });

  it('passes wrong-typed arguments through for the tool validator to report', async () => {
    const { toolCalls } = await complete(conversation('[badargs] What is 17 * 23?'));
    expect(toolCalls[0]).toMatchObject({
      arguments: { expression: 42 },
      rawArguments: '{"expression":42}',
    });
    expect(toolCalls[0]?.argumentsError).toBeUndefined();
  });

  it('maps API_KEY_INVALID (a 400) to provider_auth', async () => {
    const wrong = createGoogleProvider({ apiKey: 'nope', baseUrl: fake.url });
    const err = await rejectionOf(
      wrong.complete({ model: 'm', messages: conversation('hi'), tools: [], signal }),
    );
    expect(err).toMatchObject({ code: 'provider_auth', status: 400 });
  });

  it('keeps a per-minute 429 retryable, with the RetryInfo delay', async () => {
    fake.setHandler(() => ({ error: { status: 429, retryAfter: 7 } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_unavailable',
      retryAfterMs: 7000,
    });
  });

  it('treats a per-day quota or a zero limit as exhausted', async () => {
    fake.setHandler(() => ({ error: { status: 429, code: 'insufficient_quota', retryAfter: 40 } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_quota_exhausted',
    });
    fake.setHandler(() => ({
      error: {
        status: 429,
        message:
          'You exceeded your current quota.\n* Quota exceeded for metric: generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro',
        details: [],
      },
    }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_quota_exhausted',
    });
  });

  it('rejects an answer blocked for safety, and a blocked prompt', async () => {
    fake.setHandler(() => candidate({ role: 'model', parts: [] }, 'SAFETY'));
    const err = await rejectionOf(complete(conversation('hi')));
    expect(err).toMatchObject({ code: 'provider_rejected' });
    expect((err as TaskFailure).message).toContain('SAFETY');

    fake.setHandler(() => ({ raw: { body: { promptFeedback: { blockReason: 'SAFETY' } } } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_rejected',
    });
  });

  it('treats a 200 without candidates as retryable', async () => {
    fake.setHandler(() => ({ raw: { body: { usageMetadata: { promptTokenCount: 3 } } } }));
    expect(await rejectionOf(complete(conversation('hi')))).toMatchObject({
      code: 'provider_unavailable',
    });
  });

  it('counts thinking tokens as output and leaves thought text out of the answer', async () => {
    fake.setHandler(() => ({
      raw: {
        body: {
          candidates: [
            {
              content: {
                role: 'model',
                parts: [{ text: 'pondering', thought: true }, { text: 'Hello.' }],
              },
              finishReason: 'STOP',
              index: 0,
            },
          ],
          usageMetadata: {
            promptTokenCount: 10,
            candidatesTokenCount: 3,
            thoughtsTokenCount: 20,
            totalTokenCount: 33,
          },
          modelVersion: 'gemini-2.5-flash',
        },
      },
    }));
    const response = await complete(conversation('hi'));
    expect(response).toMatchObject({
      text: 'Hello.',
      usage: { inputTokens: 10, outputTokens: 23 },
      model: 'gemini-2.5-flash',
    });
  });

  it('marks a reply without usageMetadata as unreported instead of a measured zero', async () => {
    fake.setHandler(() => candidate({ role: 'model', parts: [{ text: 'Hello.' }] }));
    const response = await complete(conversation('hi'));
    expect(response.usage).toEqual({ inputTokens: 0, outputTokens: 0, reported: false });
  });

  it('accepts a base URL with a trailing slash or /v1beta', async () => {
    for (const baseUrl of [`${fake.url}/`, `${fake.url}/v1beta/`]) {
      const p = createGoogleProvider({ apiKey: API_KEY, baseUrl });
      expect(
        (await p.complete({ model: 'm', messages: conversation('hi'), tools: [], signal })).text,
      ).toBe('Echo: hi');
    }
  });

  it('fails without a key, before any request', async () => {
    const err = await rejectionOf(
      createGoogleProvider({ baseUrl: fake.url }).complete({
        model: 'm',
        messages: conversation('hi'),
        tools: [],
        signal,
      }),
    );
    expect(err).toMatchObject({ code: 'provider_not_configured' });
    expect(fake.requests).toHaveLength(0);
  });
});
