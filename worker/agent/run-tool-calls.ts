/**
 * One model turn's tool calls: logged in the order the model made them, run
 * in parallel (at most `maxParallel`; the rest get an error result the model
 * reads), each result logged as it arrives, and every call answered.
 *
 * The calls of a turn share one abort group. It aborts when the attempt does
 * (cancel, timeout, shutdown, fenced) and when any call fails with something
 * that is not a tool result (the step log refused a write, say): the siblings
 * still running see their signal fire, and a result that arrives after that is
 * never written. After an abort this attempt may no longer own the task, so
 * nothing it learns later may reach the step log.
 */
import type { TaskUsage } from '../../shared/db/schema.ts';
import type { ToolCall } from '../providers/provider.ts';
import { endToolSpan, failSpan, startToolSpan, type AgentTracing } from './gen-ai-spans.ts';
import type { AgentRunDeps, ToolRunner } from './agent-types.ts';
import { truncateForLog } from './truncate.ts';

/** Tool calls one model turn may run at once when the worker's config says nothing else. */
export const MAX_PARALLEL_TOOLS = 16;

export interface ToolTurn {
  calls: ToolCall[];
  /** The tools this task may use. */
  allowed: readonly string[];
  tools: ToolRunner;
  record: AgentRunDeps['record'];
  /** The attempt's signal. */
  signal: AbortSignal;
  maxParallel: number;
  /** The run's usage; `tool_calls` grows by one per result written, saved with that result. */
  usage: TaskUsage;
  /** Each call's `execute_tool` span is a child of the attempt's span. */
  tracing: AgentTracing;
}

/** Runs the turn's calls; resolves with one result per call, in the calls' order. */
export async function runToolCalls(turn: ToolTurn): Promise<Array<Record<string, unknown>>> {
  const { calls, record, signal } = turn;
  const group = new AbortController();
  const follow = () => group.abort(signal.reason);
  signal.addEventListener('abort', follow, { once: true });
  try {
    signal.throwIfAborted();
    // One after another: appends on separate connections would commit in
    // whatever order they reach the task row's lock.
    for (const call of calls) {
      group.signal.throwIfAborted();
      await record(
        'tool_call',
        logged({ id: call.id, name: call.name, arguments: call.arguments ?? call.rawArguments }),
      );
    }
    return await Promise.all(
      calls.map((call, index) =>
        tracedToolCall(turn, call, index, group.signal).catch((err: unknown) => {
          if (!group.signal.aborted) group.abort(err);
          throw err;
        }),
      ),
    );
  } finally {
    signal.removeEventListener('abort', follow);
  }
}

/** runToolCall inside its `execute_tool` span. */
async function tracedToolCall(
  turn: ToolTurn,
  call: ToolCall,
  index: number,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const span = startToolSpan(turn.tracing, call);
  try {
    const result = await runToolCall(turn, call, index, signal);
    endToolSpan(span, result);
    return result;
  } catch (err) {
    failSpan(span, err, signal);
    throw err;
  }
}

/** Runs one call; every problem with the call itself becomes a result the model can read. */
async function runToolCall(
  turn: ToolTurn,
  call: ToolCall,
  index: number,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const { allowed, tools, record, usage, maxParallel } = turn;
  const started = performance.now();
  let result: Record<string, unknown>;
  if (index >= maxParallel) {
    result = {
      error: `not run: at most ${maxParallel} tool calls run per turn and this turn made ${turn.calls.length}; call the rest in your next turn`,
    };
  } else if (call.argumentsError !== undefined) {
    result = { error: `the arguments are not valid JSON: ${call.argumentsError}` };
  } else if (!allowed.includes(call.name)) {
    result = {
      error: `unknown tool "${call.name}"; available tools: ${allowed.join(', ') || 'none'}`,
    };
  } else {
    const outcome = await tools.run(call.name, call.arguments, signal);
    result = outcome.ok ? { output: outcome.output } : { error: outcome.error };
  }
  // A result that arrives after the group was aborted is dropped, unwritten.
  signal.throwIfAborted();
  usage.tool_calls += 1;
  await record(
    'tool_result',
    logged({
      id: call.id,
      name: call.name,
      ...result,
      duration_ms: Math.round(performance.now() - started),
    }),
    { ...usage },
  );
  return result;
}

/** Cuts long strings for the step log (the model still gets them whole). */
export function logged(data: Record<string, unknown>): Record<string, unknown> {
  const { value, truncated } = truncateForLog(data);
  return truncated
    ? { ...(value as Record<string, unknown>), truncated: true }
    : (value as Record<string, unknown>);
}
