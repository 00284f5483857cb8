/**
 * The offline demo provider: deterministic answers, a calculator round trip,
 * non-zero usage, and the abort contract every provider keeps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createOfflineProvider, findExpression } from '../../worker/providers/offline.ts';
import type { ChatMessage, CompletionRequest } from '../../worker/providers/provider.ts';
import { calculatorTool, conversation, rejectionOf } from './targets.ts';

const provider = createOfflineProvider();
const signal = new AbortController().signal;
const request = (messages: ChatMessage[], tools = [calculatorTool]): CompletionRequest => ({
  model: 'offline-demo',
  messages,
  tools,
  signal,
});

describe('offline provider', () => {
  it('calls calculator for arithmetic, then answers with the result', async () => {
    const messages = conversation('What is 17 * 23?');
    const first = await provider.complete(request(messages));
    expect(first).toMatchObject({
      text: null,
      finishReason: 'tool_calls',
      toolCalls: [
        {
          name: 'calculator',
          arguments: { expression: '17 * 23' },
          rawArguments: '{"expression":"17 * 23"}',
        },
      ],
    });
    const call = first.toolCalls[0]!;
    const second = await provider.complete(
      request([
        ...messages,
        { role: 'assistant', content: null, toolCalls: first.toolCalls },
        { role: 'tool', toolCallId: call.id, name: call.name, result: { output: 391 } },
      ]),
    );
    expect(second).toMatchObject({
      text: 'The answer is 391. (offline demo provider)',
      finishReason: 'stop',
    });
    expect(second.toolCalls).toEqual([]);
  });

  it('reports a tool error instead of an answer', async () => {
    const response = await provider.complete(
      request([
        ...conversation('What is 1 / 0?'),
        {
          role: 'assistant',
          content: null,
          toolCalls: [
            {
              id: 'call_1',
              name: 'calculator',
              arguments: { expression: '1 / 0' },
              rawArguments: '',
            },
          ],
        },
        {
          role: 'tool',
          toolCallId: 'call_1',
          name: 'calculator',
          result: { error: 'division by zero' },
        },
      ]),
    );
    expect(response.text).toContain('division by zero');
  });

  it('summarises other prompts, and arithmetic when no calculator is offered', async () => {
    const long = 'Tell me about Postgres. '.repeat(10);
    const response = await provider.complete(request(conversation(long)));
    expect(response.text).toBe(
      `Offline demo provider: no LLM was called. Your prompt was ${long.length} characters: "${long.slice(0, 80)}…"`,
    );
    expect(response.finishReason).toBe('stop');
    const noTools = await provider.complete(request(conversation('What is 2 + 2?'), []));
    expect(noTools.toolCalls).toEqual([]);
    expect(noTools.text).toContain('"What is 2 + 2?"');
  });

  it('is deterministic, with non-zero usage of about a token per four characters', async () => {
    const a = await provider.complete(request(conversation('hello there')));
    const b = await provider.complete(request(conversation('hello there')));
    expect(a).toEqual(b);
    expect(a.usage.inputTokens).toBe(
      Math.ceil('You are a careful assistant.\nhello there'.length / 4),
    );
    expect(a.usage.outputTokens).toBe(Math.ceil(a.text!.length / 4));
    expect(a.model).toBe('offline-demo');
  });

  it('rejects with the signal reason when aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(
      await rejectionOf(
        provider.complete({ ...request(conversation('hi')), signal: controller.signal }),
      ),
    ).toBe(reason);

    const later = new AbortController();
    const pending = rejectionOf(
      provider.complete({ ...request(conversation('hi')), signal: later.signal }),
    );
    later.abort(reason);
    expect(await pending).toBe(reason);
  });

  it.each([
    ['What is 17 * 23?', '17 * 23'],
    ['compute (2+3)^2 please', '(2+3)^2'],
    ['(see 2 + 3)', '2 + 3'],
    ['10 % 3 and 4 - 1', '10 % 3'],
    ['I have 3 apples', undefined],
    ['version 1.2', undefined],
  ])('finds the expression in %j', (text, expected) => {
    expect(findExpression(text)).toBe(expected);
  });

  it('finds the same expression as the regex version it replaced, on any text', () => {
    const text = fc.string({
      unit: fc.constantFrom(...'0123456789.()+-*/^%  \t\nabx'.split('')),
      maxLength: 40,
    });
    fc.assert(
      fc.property(text, (t) => {
        expect(findExpression(t)).toBe(referenceFindExpression(t));
      }),
      { numRuns: 3000 },
    );
  });

  // The measurement: `1` and 40,000 `)` took 12 s. A megabyte of each
  // adversarial shape must now take well under a second (a generous bound for
  // a shared 2-core machine; the linear scan takes tens of milliseconds).
  const MB = 1024 * 1024;
  it.each([
    ['1 then closing parentheses', `1${')'.repeat(MB)}`],
    ['opening parentheses', '('.repeat(MB)],
    ['opening parentheses then 1', `${'('.repeat(MB)}1`],
    ['a long digit run', '7'.repeat(MB)],
    ['digits and spaces without an operator', '1 '.repeat(MB / 2)],
    ['alternating operators', '1+'.repeat(MB / 2)],
    ['operators without operands', '+-*/'.repeat(MB / 4)],
    ['dots', '.'.repeat(MB)],
    ['closing then opening', `${')'.repeat(MB / 2)}1${'('.repeat(MB / 2)}`],
  ])('a 1 MB prompt of %s is answered in well under a second', async (_shape, prompt) => {
    const started = performance.now();
    await provider.complete(request(conversation(prompt)));
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

/** The implementation before the linear rewrite: the oracle for what it must find. */
function referenceFindExpression(text: string): string | undefined {
  for (const match of text.matchAll(/[(\d.][\d.\s()+\-*/^%]*[\d)]/g)) {
    let out = match[0].trim();
    const count = (c: string) => out.split(c).length - 1;
    while (out.endsWith(')') && count(')') > count('(')) out = out.slice(0, -1).trimEnd();
    while (out.startsWith('(') && count('(') > count(')')) out = out.slice(1).trimStart();
    if (/[\d)]\s*[-+*/^%]\s*[-(\d.]/.test(out)) return out;
  }
  return undefined;
}
