/**
 * The `offline` provider: a deterministic stand-in for a model, with no
 * network, for demos, development and benchmarks. It answers arithmetic in the
 * prompt by calling `calculator`, and otherwise says plainly that no LLM ran.
 */
import type {
  ChatMessage,
  CompletionRequest,
  CompletionResponse,
  Provider,
  ToolCall,
} from './provider.ts';

export const OFFLINE_MODEL_LABEL = 'offline-demo';

export function createOfflineProvider(): Provider {
  return {
    name: 'offline',
    async complete(request: CompletionRequest): Promise<CompletionResponse> {
      request.signal.throwIfAborted();
      // Answer on a later tick, as a real provider would, so an abort that
      // fires meanwhile wins.
      await new Promise<void>((resolve) => setImmediate(resolve));
      request.signal.throwIfAborted();

      const last = request.messages.at(-1);
      const inputTokens = approximateTokens(request.messages.map(messageText).join('\n'));
      const answer = (text: string): CompletionResponse => ({
        text,
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens, outputTokens: approximateTokens(text) },
        model: OFFLINE_MODEL_LABEL,
      });

      if (last?.role === 'tool') {
        const results = request.messages.slice(lastAssistantIndex(request.messages) + 1);
        return answer(describeResults(results));
      }
      const prompt = last?.role === 'user' ? last.content : '';
      const expression = findExpression(prompt);
      if (expression && request.tools.some((t) => t.name === 'calculator')) {
        const callIndex = request.messages.filter((m) => m.role === 'assistant').length + 1;
        const rawArguments = JSON.stringify({ expression });
        const call: ToolCall = {
          id: `call_${callIndex}`,
          name: 'calculator',
          arguments: { expression },
          rawArguments,
        };
        return {
          text: null,
          toolCalls: [call],
          finishReason: 'tool_calls',
          usage: { inputTokens, outputTokens: approximateTokens(rawArguments) },
          model: OFFLINE_MODEL_LABEL,
        };
      }
      const preview = prompt.length > 80 ? `${prompt.slice(0, 80)}…` : prompt;
      return answer(
        `Offline demo provider: no LLM was called. Your prompt was ${prompt.length} characters: "${preview}"`,
      );
    },
  };
}

/**
 * The first arithmetic expression in `text`: numbers joined by at least one
 * operator, with optional parentheses (`17 * 23`, `(2+3)^2`). Undefined if none.
 */
export function findExpression(text: string): string | undefined {
  for (const match of text.matchAll(/[(\d.][\d.\s()+\-*/^%]*[\d)]/g)) {
    const candidate = balanceParentheses(match[0].trim());
    if (/[\d)]\s*[-+*/^%]\s*[-(\d.]/.test(candidate)) return candidate;
  }
  return undefined;
}

/** Drops unmatched parentheses at the ends ("(see 2+3)" yields "2+3)" before this). */
function balanceParentheses(text: string): string {
  let out = text;
  const count = (c: string) => out.split(c).length - 1;
  while (out.endsWith(')') && count(')') > count('(')) out = out.slice(0, -1).trimEnd();
  while (out.startsWith('(') && count('(') > count(')')) out = out.slice(1).trimStart();
  return out;
}

/** About four characters per token: deterministic and never zero for real text. */
function approximateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function messageText(message: ChatMessage): string {
  switch (message.role) {
    case 'tool':
      return JSON.stringify(message.result);
    case 'assistant':
      return (message.content ?? '') + message.toolCalls.map((c) => c.rawArguments).join('');
    default:
      return message.content;
  }
}

function lastAssistantIndex(messages: ChatMessage[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]?.role === 'assistant') return i;
  return -1;
}

function describeResults(messages: ChatMessage[]): string {
  const parts = messages.flatMap((m) => (m.role === 'tool' ? [m.result] : []));
  const errors = parts.flatMap((r) => (r.error === undefined ? [] : [stringify(r.error)]));
  if (errors.length > 0)
    return `The tool reported an error: ${errors.join('; ')}. (offline demo provider)`;
  const values = parts.map((r) => stringify(r.output ?? r));
  return values.length === 1
    ? `The answer is ${values[0]}. (offline demo provider)`
    : `The answers are ${values.join(', ')}. (offline demo provider)`;
}

/** A tool output as a reader would want it: the value itself when it is simple. */
function stringify(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    const simple = entries.find(([k]) => ['result', 'value', 'answer'].includes(k));
    if (simple) return stringify(simple[1]);
  }
  return JSON.stringify(value);
}
