/**
 * The fakes' default handler, the scripted model end-to-end tests steer with
 * prompt directives, driven through the real providers for both wire formats.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChatMessage, CompletionResponse, Provider } from '../../worker/providers/provider.ts';
import type { FakeLlmServer } from '../helpers/fake-llm-server.ts';
import { calculatorTool, conversation, rejectionOf, targets } from './targets.ts';

describe.each(targets)('scripted model over $name', (target) => {
  let fake: FakeLlmServer;
  let provider: Provider;
  const signal = new AbortController().signal;
  const complete = (messages: ChatMessage[], s: AbortSignal = signal) =>
    provider.complete({ model: target.model, messages, tools: [calculatorTool], signal: s });

  /** Plays the agent loop: answers every calculator call with `output`. */
  async function run(prompt: string, output: (expression: unknown) => unknown, maxSteps = 5) {
    const messages = conversation(prompt);
    const turns: CompletionResponse[] = [];
    for (let step = 0; step < maxSteps; step++) {
      const response = await complete(messages);
      turns.push(response);
      messages.push({
        role: 'assistant',
        content: response.text,
        toolCalls: response.toolCalls,
        providerData: response.providerData,
      });
      if (response.toolCalls.length === 0) break;
      for (const call of response.toolCalls) {
        const args = call.arguments as { expression?: unknown } | undefined;
        const result =
          call.argumentsError !== undefined || typeof args?.expression !== 'string'
            ? { error: 'bad arguments' }
            : { output: output(args.expression) };
        messages.push({ role: 'tool', toolCallId: call.id, name: call.name, result });
      }
    }
    return turns;
  }

  beforeAll(async () => {
    fake = await target.startFake();
    provider = target.provider(fake.url);
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  it('answers arithmetic through one calculator call', async () => {
    const turns = await run('What is 17 * 23?', () => 391);
    expect(turns.map((t) => t.toolCalls.length)).toEqual([1, 0]);
    expect(turns.at(-1)?.text).toBe('The answer is 391.');
    expect(fake.requests.every((r) => r.rejected === undefined)).toBe(true);
  });

  it('[fail=500x2] fails the first two requests of the prompt, then answers', async () => {
    const prompt = '[fail=500x2] Say hi';
    expect(await rejectionOf(complete(conversation(prompt)))).toMatchObject({
      code: 'provider_unavailable',
    });
    expect(await rejectionOf(complete(conversation(prompt)))).toMatchObject({ status: 500 });
    expect((await complete(conversation(prompt))).text).toBe(`Echo: ${prompt}`);
    expect(fake.requestCount('Say hi')).toBe(3);
    expect(fake.requestCount('something else')).toBe(0);
  });

  it('[fail=429][retry-after=3] always fails, with the delay', async () => {
    for (let i = 0; i < 2; i++) {
      expect(
        await rejectionOf(complete(conversation('[fail=429][retry-after=3] hi'))),
      ).toMatchObject({
        code: 'provider_unavailable',
        retryAfterMs: 3000,
      });
    }
  });

  it('[delay=<ms>] answers after the delay', async () => {
    const started = performance.now();
    const response = await complete(conversation('[delay=150] hi'));
    expect(response.text).toBe('Echo: [delay=150] hi');
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('[delay=<ms>] is abort-aware: the fake stops waiting when the client goes', async () => {
    const controller = new AbortController();
    const pending = rejectionOf(complete(conversation('[delay=60000] hi'), controller.signal));
    await fake.waitFor((r) => r.length === 1);
    controller.abort('stop');
    expect(await pending).toBe('stop');
    await fake.waitFor((r) => r[0]?.aborted === true);
  });

  it('[hang] never answers', async () => {
    const controller = new AbortController();
    const pending = rejectionOf(complete(conversation('[hang] hi'), controller.signal));
    await fake.waitFor((r) => r.length === 1);
    controller.abort('stop');
    expect(await pending).toBe('stop');
    await fake.waitFor((r) => r[0]?.aborted === true);
    expect(fake.requests[0]?.status).toBeUndefined();
  });

  it('[parallel] calls calculator twice in one turn', async () => {
    const turns = await run('[parallel] What are 6 * 7 and 1 + 2?', (e) =>
      e === '6 * 7' ? 42 : 3,
    );
    expect(turns[0]?.toolCalls).toHaveLength(2);
    expect(turns.at(-1)?.text).toBe('The answers are 42 and 3.');
  });

  it('[loop] keeps calling tools', async () => {
    const turns = await run('[loop] What is 1 + 1?', () => 2, 4);
    expect(turns).toHaveLength(4);
    expect(turns.every((t) => t.toolCalls.length === 1)).toBe(true);
  });

  it('[badargs] first sends bad arguments, then recovers', async () => {
    const turns = await run('[badargs] What is 17 * 23?', () => 391);
    expect(turns).toHaveLength(3);
    const first = turns[0]!.toolCalls[0]!;
    if (target.name === 'openai') expect(first.argumentsError).toBeDefined();
    else expect(first.arguments).toEqual({ expression: 42 });
    expect(turns[1]?.toolCalls[0]?.arguments).toEqual({ expression: '17 * 23' });
    expect(turns[2]?.text).toBe('The answer is 391.');
  });
});
