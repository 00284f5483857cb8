/**
 * The fakes' default handler: a deterministic "scripted model" that end-to-end
 * tests steer through directives in the prompt text, so tasks sharing one fake
 * server can each ask for their own behaviour. It sees the neutral request and
 * answers with a neutral reply, so it serves both wire formats.
 */
import type {
  FakeHandler,
  FakeLlmRequest,
  FakeReply,
  FakeToolCall,
  FakeToolResult,
} from './fake-llm-server.ts';

const DIRECTIVE = /\[(delay=\d+|hang|fail=\d{3}(?:x\d+)?|retry-after=\d+|parallel|loop|badargs)\]/g;

/**
 * The default handler: a deterministic model steered by the prompt.
 *
 * - no directive: with `calculator` offered and an arithmetic expression in the
 *   prompt, it calls calculator once, then answers "The answer is <result>.";
 *   otherwise it answers "Echo: <prompt>";
 * - `[delay=<ms>]` waits first (abort-aware); `[hang]` never answers;
 * - `[fail=<status>x<N>]` answers that HTTP error to the first N requests with
 *   this prompt, then behaves normally; `[fail=<status>]` always;
 *   `[retry-after=<s>]` adds Retry-After (OpenAI header, Gemini RetryInfo);
 * - `[parallel]` calls calculator twice in one turn (the first two expressions);
 * - `[loop]` calls a tool on every turn (to exhaust max_steps);
 * - `[badargs]` first calls with bad arguments (OpenAI: invalid JSON; Gemini:
 *   `expression` as a number), then recovers.
 */
export function scriptedModel(): FakeHandler {
  const seen = new Map<string, number>();
  return (request) => {
    const directives = new Set([...request.prompt.matchAll(DIRECTIVE)].map((m) => m[1] ?? ''));
    const has = (name: string) => directives.has(name);
    const value = (name: string) =>
      [...directives].find((d) => d.startsWith(`${name}=`))?.slice(name.length + 1);
    const count = (seen.get(request.prompt) ?? 0) + 1;
    seen.set(request.prompt, count);

    const reply = ((): FakeReply => {
      if (has('hang')) return { hang: true };
      const fail = value('fail');
      if (fail) {
        const [status, times] = fail.split('x').map(Number);
        if (times === undefined || count <= times) {
          const retryAfter = value('retry-after');
          return {
            error: {
              status: status ?? 500,
              ...(retryAfter === undefined ? {} : { retryAfter: Number(retryAfter) }),
            },
          };
        }
      }
      return scriptedAnswer(request, has);
    })();
    const delay = value('delay');
    return delay === undefined || 'hang' in reply ? reply : { delayMs: Number(delay), then: reply };
  };
}

function scriptedAnswer(request: FakeLlmRequest, has: (directive: string) => boolean): FakeReply {
  const prompt = request.prompt.replace(DIRECTIVE, ' ');
  const expressions = findExpressions(prompt);
  const calculator = request.tools.includes('calculator');
  const callCalculator = (expression: string): FakeToolCall => ({
    name: 'calculator',
    arguments: { expression },
  });

  if (has('loop') && request.tools.length > 0) {
    return calculator
      ? { toolCalls: [callCalculator(expressions[0] ?? '1 + 1')] }
      : { toolCalls: [{ name: request.tools[0] ?? '', arguments: {} }] };
  }
  const calls = (): FakeReply => {
    const wanted = has('parallel')
      ? [expressions[0], expressions[1] ?? expressions[0]]
      : [expressions[0]];
    return { toolCalls: wanted.map((e) => callCalculator(e ?? '')) };
  };
  if (request.toolRounds === 0) {
    if (!calculator || expressions.length === 0) return { text: `Echo: ${request.prompt}` };
    if (has('badargs')) {
      const bad =
        request.format === 'openai'
          ? `{"expression": "${expressions[0]}"` // cut short: not valid JSON
          : { expression: 42 }; // Gemini always sends objects: send the wrong type instead
      return { toolCalls: [{ name: 'calculator', arguments: bad }] };
    }
    return calls();
  }
  if (has('badargs') && request.toolRounds === 1) return calls();
  return { text: describeResults(request.toolResults) };
}

function describeResults(results: FakeToolResult[]): string {
  const errors = results.flatMap((r) => {
    const c = r.content as { error?: unknown } | undefined;
    return typeof c === 'object' && c !== null && c.error !== undefined ? [plain(c.error)] : [];
  });
  if (errors.length > 0) return `The tool reported an error: ${errors.join('; ')}.`;
  const values = results.map((r) => {
    const c = r.content as { output?: unknown } | undefined;
    return plain(typeof c === 'object' && c !== null && 'output' in c ? c.output : r.content);
  });
  if (values.length === 0) return 'Done.';
  return values.length === 1
    ? `The answer is ${values[0]}.`
    : `The answers are ${values.slice(0, -1).join(', ')} and ${values.at(-1)}.`;
}

function plain(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'object' && value !== null) {
    const simple = Object.entries(value).find(
      ([k]) => k === 'result' || k === 'value' || k === 'answer',
    );
    if (simple) return plain(simple[1]);
  }
  return JSON.stringify(value);
}

/** Arithmetic expressions in the text: numbers joined by operators, with parentheses. */
export function findExpressions(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/[(\d.][\d.\s()+\-*/^%]*[\d)]/g)) {
    let candidate = match[0].trim();
    const count = (c: string) => candidate.split(c).length - 1;
    while (candidate.endsWith(')') && count(')') > count('('))
      candidate = candidate.slice(0, -1).trimEnd();
    while (candidate.startsWith('(') && count('(') > count(')'))
      candidate = candidate.slice(1).trimStart();
    if (/[\d)]\s*[-+*/^%]\s*[-(\d.]/.test(candidate)) found.push(candidate);
  }
  return found;
}
