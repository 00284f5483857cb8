// The agent loop on its own: a scripted provider (the unit's input), the real
// tools, and a recorder standing in for the step log.
import { describe, expect, it } from 'vitest';
import { runAgent, type ToolRunner } from '../../worker/agent/run-agent.ts';
import type {
  CompletionRequest,
  CompletionResponse,
  Provider,
  ToolCall,
} from '../../worker/providers/provider.ts';
import { runTool, toolDefinition, TOOLS } from '../../worker/tools/registry.ts';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { resolveAgentConfig } from '../../shared/tasks/agent-config.ts';
import { MAX_EVENT_STRING } from '../../worker/agent/truncate.ts';
import type { AgentConfig } from '../../shared/db/schema.ts';

const tools: ToolRunner = {
  definitions: (names) => names.map((n) => toolDefinition(TOOLS[n as keyof typeof TOOLS])),
  run: (name, args, signal) => runTool(name, args, { signal, httpAllowlist: [] }),
};

function scripted(
  turns: Array<(req: CompletionRequest) => Partial<CompletionResponse>>,
): Provider & { requests: CompletionRequest[] } {
  const requests: CompletionRequest[] = [];
  return {
    name: 'openai',
    requests,
    async complete(req) {
      requests.push(structuredClone({ ...req, signal: undefined }) as unknown as CompletionRequest);
      const turn = turns[requests.length - 1];
      if (!turn) throw new Error('no more scripted turns');
      return {
        text: null,
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: 10, outputTokens: 5 },
        model: 'scripted',
        ...turn(req),
      };
    },
  };
}

const call = (id: string, name: string, args: unknown): ToolCall => ({
  id,
  name,
  arguments: args,
  rawArguments: JSON.stringify(args),
});

function recorder() {
  const events: Array<{ type: string; data: Record<string, unknown> }> = [];
  return {
    events,
    record: async (type: string, data: Record<string, unknown>) => void events.push({ type, data }),
  };
}

const config = (over: Partial<AgentConfig> = {}): AgentConfig => ({
  ...resolveAgentConfig(
    { tools: ['calculator', 'current_time'] },
    { provider: 'openai', model: undefined },
  ),
  ...over,
});
const zero = { input_tokens: 0, output_tokens: 0, llm_calls: 0, tool_calls: 0 };

describe('runAgent', () => {
  it('feeds every problem with a tool call back to the model as a result, then finishes', async () => {
    const provider = scripted([
      () => ({
        toolCalls: [
          call('c1', 'shell', { cmd: 'rm -rf /' }), // a tool the task did not get
          call('c2', 'calculator', { expr: '1+1' }), // wrong argument name
          call('c3', 'calculator', { expression: '1/0' }), // the tool itself refuses
          {
            id: 'c4',
            name: 'calculator',
            arguments: undefined,
            rawArguments: '{"expression": ',
            argumentsError: 'Unexpected end of JSON input',
          },
          call('c5', 'calculator', { expression: '6*7' }),
        ],
        finishReason: 'tool_calls',
      }),
      () => ({ text: 'Forty-two.' }),
    ]);
    const { events, record } = recorder();
    const result = await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools, record, signal: new AbortController().signal },
    );
    expect(result.answer).toBe('Forty-two.');
    expect(result.usage).toEqual({
      input_tokens: 20,
      output_tokens: 10,
      llm_calls: 2,
      tool_calls: 5,
    });
    const second = provider.requests[1]!.messages.filter((m) => m.role === 'tool');
    expect(second.map((m) => (m.role === 'tool' ? m.toolCallId : ''))).toEqual([
      'c1',
      'c2',
      'c3',
      'c4',
      'c5',
    ]);
    const results = Object.fromEntries(
      second.map((m) => (m.role === 'tool' ? [m.toolCallId, m.result] : [])),
    );
    expect(String(results.c1!.error)).toContain('unknown tool "shell"');
    expect(String(results.c2!.error)).toContain('expression');
    expect(String(results.c3!.error)).toMatch(/division by zero/i);
    expect(String(results.c4!.error)).toContain('not valid JSON');
    expect(results.c5).toEqual({ output: { expression: '6*7', result: 42 } });
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'tool_call')).toHaveLength(5);
    expect(types.filter((t) => t === 'tool_result')).toHaveLength(5);
    expect(types.slice(-3)).toEqual(['llm_call', 'message', 'answer']);
    // Every tool_result follows its own tool_call.
    for (const id of ['c1', 'c2', 'c3', 'c4', 'c5']) {
      const at = (type: string) => events.findIndex((e) => e.type === type && e.data.id === id);
      expect(at('tool_call')).toBeLessThan(at('tool_result'));
    }
  });

  it('runs parallel tool calls concurrently', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const slow: ToolRunner = {
      definitions: tools.definitions,
      async run() {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return { ok: true, output: 1 };
      },
    };
    const provider = scripted([
      () => ({
        toolCalls: [
          call('a', 'calculator', { expression: '1' }),
          call('b', 'calculator', { expression: '2' }),
        ],
      }),
      () => ({ text: 'done' }),
    ]);
    await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools: slow, record: recorder().record, signal: new AbortController().signal },
    );
    expect(maxInFlight).toBe(2);
  });

  it('fails with max_steps_exceeded when the model never stops calling tools', async () => {
    const provider = scripted(
      Array.from({ length: 3 }, () => () => ({
        toolCalls: [call('x', 'calculator', { expression: '1+1' })],
      })),
    );
    const run = runAgent(
      { prompt: 'p', config: config({ max_steps: 3 }), usage: zero },
      { provider, tools, record: recorder().record, signal: new AbortController().signal },
    );
    await expect(run).rejects.toSatisfy(
      (e: unknown) => e instanceof TaskFailure && e.code === 'max_steps_exceeded',
    );
    expect(provider.requests).toHaveLength(3);
  });

  it('adds to the usage of earlier attempts', async () => {
    const provider = scripted([() => ({ text: 'hi' })]);
    const prior = { input_tokens: 100, output_tokens: 50, llm_calls: 3, tool_calls: 2 };
    const { usage } = await runAgent(
      { prompt: 'p', config: config(), usage: prior },
      { provider, tools, record: recorder().record, signal: new AbortController().signal },
    );
    expect(usage).toEqual({ input_tokens: 110, output_tokens: 55, llm_calls: 4, tool_calls: 2 });
  });

  it('truncates large payloads in the step log with a marker, but not what the model gets', async () => {
    const big = 'x'.repeat(MAX_EVENT_STRING + 500);
    const provider = scripted([() => ({ text: big })]);
    const { events, record } = recorder();
    const { answer } = await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools, record, signal: new AbortController().signal },
    );
    expect(answer).toBe(big);
    const logged = events.find((e) => e.type === 'answer')!.data;
    expect(logged.truncated).toBe(true);
    expect(String(logged.text)).toContain('…[truncated 500 characters]');
    expect(String(logged.text).length).toBeLessThan(big.length);
  });

  it('stops at once when its signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    const provider = scripted([() => ({ text: 'never' })]);
    await expect(
      runAgent(
        { prompt: 'p', config: config(), usage: zero },
        { provider, tools, record: recorder().record, signal: controller.signal },
      ),
    ).rejects.toThrow('cancelled');
    expect(provider.requests).toHaveLength(0);
  });
});
