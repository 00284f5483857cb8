/**
 * The types the agent loop (run-agent.ts) and its tool runner
 * (run-tool-calls.ts) share: what a run is given and what it returns.
 */
import type { AgentConfig, EventType, TaskUsage } from '../../shared/db/schema.ts';
import type { Provider, ToolDefinition } from '../providers/provider.ts';
import type { AgentTracing } from './gen-ai-spans.ts';

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
  /** Tool calls one turn may run; the rest get an error result. Default MAX_PARALLEL_TOOLS (16). */
  maxParallelTools?: number;
  /** Where the chat and tool spans go; default the global tracer under the active context. */
  tracing?: AgentTracing;
}

export interface AgentRunResult {
  answer: string;
  usage: TaskUsage;
}
