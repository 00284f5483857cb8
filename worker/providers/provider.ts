/**
 * The one interface every LLM provider implements. The agent loop speaks only
 * this neutral shape; each provider file translates it to its wire format.
 *
 * Glossary:
 * - a *turn* is one request to the model and its answer;
 * - a *tool call* is the model asking to run a tool with JSON arguments;
 * - a *tool result* is our answer to one tool call, fed back on the next turn.
 */
import type { ProviderName } from '../../shared/catalog.ts';

/** JSON Schema object as sent to a model for a tool's parameters. */
export type JsonSchema = Record<string, unknown>;

export interface ToolDefinition {
  name: string;
  description: string;
  parameters: JsonSchema;
}

export interface ToolCall {
  /** The provider's id for the call (OpenAI `call_…`); providers without ids get a generated one. */
  id: string;
  name: string;
  /** Parsed arguments. `undefined` when the model's arguments were not valid JSON (see `argumentsError`). */
  arguments: unknown;
  /** The arguments exactly as the model sent them (OpenAI sends a JSON string). */
  rawArguments: string;
  /** Set when `rawArguments` could not be parsed; the loop reports it back to the model. */
  argumentsError?: string;
}

export type ChatMessage =
  | { role: 'system'; content: string }
  | { role: 'user'; content: string }
  | {
      role: 'assistant';
      content: string | null;
      toolCalls: ToolCall[];
      /** The provider's own message object, for providers that must echo it back verbatim (Gemini). */
      providerData?: unknown;
    }
  | {
      role: 'tool';
      toolCallId: string;
      name: string;
      /** The result (or error) as a JSON-serialisable object. */
      result: Record<string, unknown>;
    };

export interface CompletionRequest {
  model: string;
  messages: ChatMessage[];
  tools: ToolDefinition[];
  temperature?: number;
  /** Aborts the in-flight HTTP request (cancellation, timeout, shutdown). */
  signal: AbortSignal;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** false when the reply carried no token counts (the counts are then 0, not measured). */
  reported?: boolean;
}

export interface CompletionResponse {
  /** Assistant text, or null when the model only called tools. */
  text: string | null;
  toolCalls: ToolCall[];
  /** The provider's finish reason as it sent it (`stop`, `tool_calls`, `STOP`, …). */
  finishReason: string;
  usage: Usage;
  /** The model that answered, as the provider reports it. */
  model: string;
  /** Provider-specific data to keep on the assistant message (see ChatMessage). */
  providerData?: unknown;
}

/**
 * A provider. `complete` resolves with the model's answer or throws a
 * `TaskFailure` (shared/tasks/task-error.ts) whose code classifies the error.
 * An abort through `signal` must reject promptly with the signal's reason.
 */
export interface Provider {
  readonly name: ProviderName;
  complete(request: CompletionRequest): Promise<CompletionResponse>;
}
