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
import type { AgentConfig, TaskUsage } from '../../shared/db/schema.ts';
import { waitFor } from '../helpers/wait-for.ts';

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
  const events: Array<{ type: string; data: Record<string, unknown>; usage?: TaskUsage }> = [];
  return {
    events,
    record: async (type: string, data: Record<string, unknown>, usage?: TaskUsage) =>
      void events.push({ type, data, ...(usage ? { usage } : {}) }),
  };
}

/** A tool runner whose calls finish only when the test says so (and see their signal). */
function gatedTools() {
  const started: Array<{ args: unknown; signal: AbortSignal; finish: (output: unknown) => void }> =
    [];
  const runner: ToolRunner = {
    definitions: tools.definitions,
    run: (_name, args, signal) =>
      new Promise((resolve) =>
        started.push({ args, signal, finish: (output) => resolve({ ok: true, output }) }),
      ),
  };
  return { started, runner };
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

  it("counts every tool that ran, the last step's included, and saves the count with its result", async () => {
    const provider = scripted(
      Array.from({ length: 3 }, () => () => ({
        toolCalls: [call('x', 'calculator', { expression: '1+1' })],
      })),
    );
    const { events, record } = recorder();
    await expect(
      runAgent(
        { prompt: 'p', config: config({ max_steps: 3 }), usage: zero },
        { provider, tools, record, signal: new AbortController().signal },
      ),
    ).rejects.toThrow(TaskFailure);
    const results = events.filter((e) => e.type === 'tool_result');
    expect(results).toHaveLength(3);
    // The worker keeps the usage of the last write it made: it must count all three.
    expect(events.at(-1)!.usage).toMatchObject({ llm_calls: 3, tool_calls: 3 });
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

  it('logs tool calls in the order the model made them, however fast each write commits', async () => {
    const provider = scripted([
      () => ({
        toolCalls: [
          {
            id: 'c1',
            name: 'calculator',
            arguments: undefined,
            rawArguments: '{',
            argumentsError: 'Unexpected end of JSON input',
          },
          call('c2', 'calculator', { expression: '1+1' }),
          call('c3', 'current_time', {}),
        ],
      }),
      () => ({ text: 'done' }),
    ]);
    // Each write commits after a delay; earlier calls' writes are slower, so
    // writes made concurrently would land in reverse order.
    const committed: Array<{ type: string; id: unknown }> = [];
    const delays: Record<string, number> = { c1: 30, c2: 15, c3: 0 };
    const record = async (type: string, data: Record<string, unknown>) => {
      if (type === 'tool_call') {
        await new Promise((r) => setTimeout(r, delays[String(data.id)] ?? 0));
      }
      committed.push({ type, id: data.id });
    };
    await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools, record, signal: new AbortController().signal },
    );
    expect(committed.filter((e) => e.type === 'tool_call').map((e) => e.id)).toEqual([
      'c1',
      'c2',
      'c3',
    ]);
  });

  it('stops the siblings when one tool call fails with a non-tool error, and never writes their results', async () => {
    const { started, runner } = gatedTools();
    const provider = scripted([
      () => ({
        toolCalls: [
          call('a', 'calculator', { expression: '1' }),
          call('b', 'calculator', { expression: '2' }),
        ],
      }),
    ]);
    const written: string[] = [];
    const fenced = new Error('fenced out: the task moved on without this attempt');
    const record = async (type: string, data: Record<string, unknown>) => {
      if (type === 'tool_result' && data.id === 'a') throw fenced;
      written.push(`${type}:${String(data.id ?? '')}`);
    };
    const run = runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools: runner, record, signal: new AbortController().signal },
    );
    await waitFor(() => started.length === 2, { what: 'both tools to start' });
    started[0]!.finish('a done'); // its write is refused
    await expect(run).rejects.toBe(fenced);
    expect(started[1]!.signal.aborted).toBe(true);
    started[1]!.finish('b done, too late'); // this tool ignored its signal
    await new Promise((r) => setImmediate(r));
    expect(written).not.toContain('tool_result:b');
    expect(written).toEqual(['llm_call:', 'tool_call:a', 'tool_call:b']);
  });

  it('never writes a tool result that arrives after the attempt was aborted', async () => {
    const { started, runner } = gatedTools();
    const provider = scripted([
      () => ({ toolCalls: [call('a', 'calculator', { expression: '1' })] }),
      () => ({ text: 'never' }),
    ]);
    const { events, record } = recorder();
    const controller = new AbortController();
    const run = runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools: runner, record, signal: controller.signal },
    );
    await waitFor(() => started.length === 1, { what: 'the tool to start' });
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(started[0]!.signal.aborted).toBe(true);
    started[0]!.finish('late'); // ignores its signal and answers anyway
    await expect(run).rejects.toBe(reason);
    expect(events.map((e) => e.type)).toEqual(['llm_call', 'tool_call']);
    expect(provider.requests).toHaveLength(1);
  });

  it('caps the tool calls run in one turn; the rest get an error result the model reads', async () => {
    let ran = 0;
    const counting: ToolRunner = {
      definitions: tools.definitions,
      run: async () => ({ ok: true, output: ++ran }),
    };
    const calls = Array.from({ length: 6 }, (_, i) =>
      call(`c${i}`, 'calculator', { expression: `${i}` }),
    );
    const provider = scripted([() => ({ toolCalls: calls }), () => ({ text: 'done' })]);
    const { events, record } = recorder();
    const { usage } = await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      {
        provider,
        tools: counting,
        record,
        signal: new AbortController().signal,
        maxParallelTools: 4,
      },
    );
    expect(ran).toBe(4);
    const toolMessages = provider.requests[1]!.messages.filter((m) => m.role === 'tool');
    expect(toolMessages).toHaveLength(6);
    const refused = toolMessages.slice(4).map((m) => (m.role === 'tool' ? m.result : {}));
    for (const r of refused) expect(String(r.error)).toMatch(/at most 4 tool calls run per turn/);
    expect(events.filter((e) => e.type === 'tool_call')).toHaveLength(6);
    const results = events.filter((e) => e.type === 'tool_result');
    expect(results).toHaveLength(6);
    expect(results.filter((e) => typeof e.data.error === 'string')).toHaveLength(2);
    expect(usage.tool_calls).toBe(6);
  });

  it('writes an llm_call event with the error when a provider call fails', async () => {
    const provider: Provider = {
      name: 'openai',
      complete: async () => {
        throw new TaskFailure('provider_unavailable', 'openai: 503 overloaded', { status: 503 });
      },
    };
    const { events, record } = recorder();
    await expect(
      runAgent(
        { prompt: 'p', config: config(), usage: zero },
        { provider, tools, record, signal: new AbortController().signal },
      ),
    ).rejects.toThrow('overloaded');
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('llm_call');
    expect(events[0]!.data).toMatchObject({
      step: 1,
      provider: 'openai',
      error: {
        code: 'provider_unavailable',
        status: 503,
        retryable: true,
        message: 'openai: 503 overloaded',
      },
    });
    expect(typeof events[0]!.data.latency_ms).toBe('number');
  });

  it('marks a reply that carried no usage in its llm_call event', async () => {
    const provider = scripted([
      () => ({ text: 'hi', usage: { inputTokens: 0, outputTokens: 0, reported: false } }),
    ]);
    const { events, record } = recorder();
    await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      { provider, tools, record, signal: new AbortController().signal },
    );
    expect(events[0]!.data).toMatchObject({ usage_reported: false, input_tokens: 0 });
    const other = recorder();
    await runAgent(
      { prompt: 'p', config: config(), usage: zero },
      {
        provider: scripted([() => ({ text: 'hi' })]),
        tools,
        record: other.record,
        signal: new AbortController().signal,
      },
    );
    expect(other.events[0]!.data).toMatchObject({ usage_reported: true });
  });
});
