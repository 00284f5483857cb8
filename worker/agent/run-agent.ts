/**
 * The agent loop: system prompt + user prompt + tool definitions → model →
 * run the tool calls it asks for (in parallel), feed the results back → …
 * until the model answers without tool calls, or max_steps is reached.
 *
 * The outcome is typed: the answer, or a thrown TaskFailure / abort. Nothing
 * here inspects the answer's text to decide success.
 *
 * The step log tells what happened, in order: every model request gets an
 * `llm_call` event (a failed one with its error), and `usage.tool_calls`
 * counts the tool results written, saved with each. The last step's tools
 * still run when max_steps is reached, so their results are in the log.
 */
import type { TaskUsage } from '../../shared/db/schema.ts';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import type { ChatMessage } from '../providers/provider.ts';
import type { AgentRunDeps, AgentRunInput, AgentRunResult } from './agent-types.ts';
import { defaultTracing, endChatSpan, failSpan, startChatSpan } from './gen-ai-spans.ts';
import { logged, MAX_PARALLEL_TOOLS, runToolCalls } from './run-tool-calls.ts';

export type { AgentRunDeps, AgentRunInput, AgentRunResult, ToolRunner } from './agent-types.ts';

export async function runAgent(input: AgentRunInput, deps: AgentRunDeps): Promise<AgentRunResult> {
  const { config } = input;
  const { provider, tools, record, signal } = deps;
  const tracing = deps.tracing ?? defaultTracing();
  const usage: TaskUsage = { ...input.usage };
  const definitions = tools.definitions(config.tools);
  const messages: ChatMessage[] = [
    { role: 'system', content: config.system_prompt },
    { role: 'user', content: input.prompt },
  ];

  for (let step = 1; step <= config.max_steps; step++) {
    signal.throwIfAborted();
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    let response;
    const span = startChatSpan(tracing, provider.name, config);
    try {
      response = await provider.complete({
        model: config.model,
        messages,
        tools: definitions,
        temperature: config.temperature ?? undefined,
        signal,
      });
    } catch (err) {
      failSpan(span, err, signal);
      // An aborted attempt writes nothing more; a failed call is a step too.
      // If that write fails, the provider's error still decides the outcome
      // (a fenced-out attempt is told apart by its aborted signal).
      if (!signal.aborted) {
        await record('llm_call', {
          step,
          provider: provider.name,
          model: config.model,
          latency_ms: latency(),
          error: describeFailure(err),
        }).catch(() => undefined);
      }
      throw err;
    }
    endChatSpan(span, response);
    usage.input_tokens += response.usage.inputTokens;
    usage.output_tokens += response.usage.outputTokens;
    usage.llm_calls += 1;
    await record(
      'llm_call',
      {
        step,
        provider: provider.name,
        model: response.model,
        latency_ms: latency(),
        input_tokens: response.usage.inputTokens,
        output_tokens: response.usage.outputTokens,
        // false: the reply carried no token counts, so the zeros above are unknowns.
        usage_reported: response.usage.reported !== false,
        finish_reason: response.finishReason,
        tool_calls: response.toolCalls.length,
        ...(provider.name === 'offline'
          ? { note: 'offline demo provider: no LLM was called' }
          : {}),
      },
      { ...usage },
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

    const results = await runToolCalls({
      calls: response.toolCalls,
      allowed: config.tools,
      tools,
      record,
      signal,
      maxParallel: deps.maxParallelTools ?? MAX_PARALLEL_TOOLS,
      usage,
      tracing,
    });
    for (const [i, call] of response.toolCalls.entries()) {
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, result: results[i]! });
    }
  }
  throw new TaskFailure(
    'max_steps_exceeded',
    `the model was still calling tools after max_steps (${config.max_steps}) steps`,
  );
}

/** A failed provider call for the step log: the classified error, never a raw exception. */
function describeFailure(err: unknown): Record<string, unknown> {
  if (err instanceof TaskFailure) {
    return {
      code: err.code,
      message: err.message,
      retryable: err.retryable,
      ...(err.status === undefined ? {} : { status: err.status }),
    };
  }
  return {
    code: 'internal_error',
    message: 'the provider failed unexpectedly (see the worker log)',
  };
}
