/**
 * The agent loop: system prompt + user prompt + tool definitions → model →
 * run the tool calls it asks for (in parallel), feed the results back → …
 * until the model answers without tool calls, or max_steps is reached.
 *
 * The outcome is typed: the answer, or a thrown TaskFailure / abort. Nothing
 * here inspects the answer's text to decide success.
 */
import type { AgentConfig, TaskUsage } from '../../shared/db/schema.ts';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import type { EventType } from '../../shared/db/schema.ts';
import type { ChatMessage, Provider, ToolCall, ToolDefinition } from '../providers/provider.ts';
import { truncateForLog } from './truncate.ts';

export interface ToolRunner {
  definitions(names: readonly string[]): ToolDefinition[];
  run(
    name: string,
    args: unknown,
    signal: AbortSignal,
  ): Promise<{ ok: true; output: unknown } | { ok: false; error: string }>;
}

export interface AgentRunInput {
  prompt: string;
  config: AgentConfig;
  /** Usage recorded by earlier attempts; this run adds to it. */
  usage: TaskUsage;
}

export interface AgentRunDeps {
  provider: Provider;
  tools: ToolRunner;
  /** Commits one step-log event (and the usage so far). Throws if the attempt was fenced out. */
  record(type: EventType, data: Record<string, unknown>, usage?: TaskUsage): Promise<void>;
  signal: AbortSignal;
}

export interface AgentRunResult {
  answer: string;
  usage: TaskUsage;
}

export async function runAgent(input: AgentRunInput, deps: AgentRunDeps): Promise<AgentRunResult> {
  const { config } = input;
  const { provider, tools, record, signal } = deps;
  const usage: TaskUsage = { ...input.usage };
  const definitions = tools.definitions(config.tools);
  const messages: ChatMessage[] = [
    { role: 'system', content: config.system_prompt },
    { role: 'user', content: input.prompt },
  ];

  for (let step = 1; step <= config.max_steps; step++) {
    signal.throwIfAborted();
    const started = performance.now();
    const response = await provider.complete({
      model: config.model,
      messages,
      tools: definitions,
      temperature: config.temperature ?? undefined,
      signal,
    });
    usage.input_tokens += response.usage.inputTokens;
    usage.output_tokens += response.usage.outputTokens;
    usage.llm_calls += 1;
    await record(
      'llm_call',
      {
        step,
        provider: provider.name,
        model: response.model,
        latency_ms: Math.round(performance.now() - started),
        input_tokens: response.usage.inputTokens,
        output_tokens: response.usage.outputTokens,
        finish_reason: response.finishReason,
        tool_calls: response.toolCalls.length,
        ...(provider.name === 'offline'
          ? { note: 'offline demo provider: no LLM was called' }
          : {}),
      },
      usage,
    );
    if (response.text) await record('message', logged({ step, text: response.text }));
    messages.push({
      role: 'assistant',
      content: response.text,
      toolCalls: response.toolCalls,
      providerData: response.providerData,
    });

    if (response.toolCalls.length === 0) {
      const answer = response.text ?? '';
      await record('answer', logged({ text: answer }));
      return { answer, usage };
    }

    const results = await Promise.all(
      response.toolCalls.map((call) => runToolCall(call, config.tools, tools, record, signal)),
    );
    usage.tool_calls += response.toolCalls.length;
    for (const [i, call] of response.toolCalls.entries()) {
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, result: results[i]! });
    }
  }
  throw new TaskFailure(
    'max_steps_exceeded',
    `the model was still calling tools after max_steps (${config.max_steps}) steps`,
  );
}

/** Runs one tool call; every problem becomes a result the model can read. */
async function runToolCall(
  call: ToolCall,
  allowed: readonly string[],
  tools: ToolRunner,
  record: AgentRunDeps['record'],
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  await record(
    'tool_call',
    logged({ id: call.id, name: call.name, arguments: call.arguments ?? call.rawArguments }),
  );
  const started = performance.now();
  let result: Record<string, unknown>;
  if (call.argumentsError !== undefined) {
    result = { error: `the arguments are not valid JSON: ${call.argumentsError}` };
  } else if (!allowed.includes(call.name)) {
    result = {
      error: `unknown tool "${call.name}"; available tools: ${allowed.join(', ') || 'none'}`,
    };
  } else {
    const outcome = await tools.run(call.name, call.arguments, signal);
    result = outcome.ok ? { output: outcome.output } : { error: outcome.error };
  }
  await record(
    'tool_result',
    logged({
      id: call.id,
      name: call.name,
      ...result,
      duration_ms: Math.round(performance.now() - started),
    }),
  );
  return result;
}

function logged(data: Record<string, unknown>): Record<string, unknown> {
  const { value, truncated } = truncateForLog(data);
  return truncated
    ? { ...(value as Record<string, unknown>), truncated: true }
    : (value as Record<string, unknown>);
}
