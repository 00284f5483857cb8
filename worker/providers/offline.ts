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
 *
 * A single pass over the text, then one over each candidate: the prompt is
 * user input, and the regex-and-recount version this replaces was quadratic
 * (a `1` and 40,000 `)` held the worker for 12 s).
 */
export function findExpression(text: string): string | undefined {
  let i = 0;
  while (i < text.length) {
    // A candidate is a run of expression characters, from its first character
    // that can start an expression to its last that can end one.
    if (!isExpressionChar(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let runEnd = i;
    while (runEnd < text.length && isExpressionChar(text.charCodeAt(runEnd))) runEnd++;
    let first = i;
    while (first < runEnd && !canStart(text.charCodeAt(first))) first++;
    let last = runEnd - 1;
    while (last > first && !canEnd(text.charCodeAt(last))) last--;
    if (last > first) {
      const candidate = balanceParentheses(text, first, last + 1);
      if (hasOperatorBetweenOperands(candidate)) return candidate;
    }
    i = runEnd;
  }
  return undefined;
}

const OPEN = 0x28; // (
const CLOSE = 0x29; // )
const DOT = 0x2e;
const MINUS = 0x2d;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/** `+ - * / ^ %` */
const isOperator = (c: number) =>
  c === 0x2b || c === MINUS || c === 0x2a || c === 0x2f || c === 0x5e || c === 0x25;
const canStart = (c: number) => isDigit(c) || c === OPEN || c === DOT;
const canEnd = (c: number) => isDigit(c) || c === CLOSE;

/** What the regex class `\s` matches (WhiteSpace and LineTerminator), without a regex per character. */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Digits, `.`, whitespace, parentheses and the operators. */
function isExpressionChar(c: number): boolean {
  return isDigit(c) || c === DOT || c === OPEN || c === CLOSE || isOperator(c) || isSpace(c);
}

/**
 * text[start, end) without unmatched parentheses at its ends ("(see 2+3)"
 * yields "2+3)" before this), counting each parenthesis once.
 */
function balanceParentheses(text: string, start: number, end: number): string {
  let open = 0;
  let close = 0;
  for (let k = start; k < end; k++) {
    const c = text.charCodeAt(k);
    if (c === OPEN) open++;
    else if (c === CLOSE) close++;
  }
  while (end > start && text.charCodeAt(end - 1) === CLOSE && close > open) {
    end--;
    close--;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  }
  while (start < end && text.charCodeAt(start) === OPEN && open > close) {
    start++;
    open--;
    while (start < end && isSpace(text.charCodeAt(start))) start++;
  }
  return text.slice(start, end);
}

/** Whether an operand (a digit or `)`), an operator and the start of another follow each other, spaces aside. */
function hasOperatorBetweenOperands(candidate: string): boolean {
  // The two characters before this one that were not whitespace (-1: none yet).
  let before = -1;
  let previous = -1;
  for (let k = 0; k < candidate.length; k++) {
    const c = candidate.charCodeAt(k);
    if (isSpace(c)) continue;
    if (canEnd(before) && isOperator(previous) && (canStart(c) || c === MINUS)) return true;
    before = previous;
    previous = c;
  }
  return false;
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
