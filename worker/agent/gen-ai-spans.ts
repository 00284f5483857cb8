/**
 * The worker's OpenTelemetry spans, with the GenAI semantic conventions'
 * names and attributes: `invoke_agent` per attempt, `chat {model}` per model
 * call (kind CLIENT), `execute_tool {name}` per tool call. Kept here so each
 * instrumentation point in the loop is a line or two.
 *
 * The GenAI attribute names are still "development" in the conventions, so
 * they are written out here rather than imported from the incubating entry
 * point of @opentelemetry/semantic-conventions (which may rename them).
 * With tracing off the tracer is the API's no-op: spans record nothing.
 */
import {
  context as otelContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { ProviderName } from '../../shared/catalog.ts';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { tracerOr } from '../../shared/trace-context.ts';
import type { CompletionResponse, ToolCall } from '../providers/provider.ts';
import { abortKind, RunAbort } from './run-abort.ts';

/** Where an attempt's spans go, and the span they are children of. */
export interface AgentTracing {
  tracer: Tracer;
  /** The context holding the attempt's `invoke_agent` span. */
  context: Context;
}

/** The global tracer and the active context: what a caller that passed nothing gets. */
export const defaultTracing = (): AgentTracing => ({
  tracer: tracerOr(undefined),
  context: otelContext.active(),
});

// gen_ai.provider.name: the conventions' well-known value where there is one.
const PROVIDER_NAME: Record<ProviderName, string> = {
  openai: 'openai',
  google: 'gcp.gemini',
  offline: 'agentq.offline',
};

/** The attempt's span; its context is the parent of the attempt's chat and tool spans. */
export function startAttemptSpan(
  tracer: Tracer,
  parent: Context,
  task: { id: string; attempts: number; config: { provider: ProviderName; model: string } },
): AgentTracing & { span: Span } {
  const span = tracer.startSpan(
    'invoke_agent',
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'invoke_agent',
        'gen_ai.provider.name': PROVIDER_NAME[task.config.provider],
        'gen_ai.request.model': task.config.model,
        'agentq.task.id': task.id,
        'agentq.task.attempt': task.attempts,
      },
    },
    parent,
  );
  return { tracer, span, context: trace.setSpan(parent, span) };
}

/** Ends the attempt's span with what became of it (and of the task row). */
export function endAttemptSpan(
  span: Span,
  ended: {
    outcome: string;
    status?: string | undefined;
    error?: { code: string; message: string };
  },
): void {
  span.setAttribute('agentq.task.outcome', ended.outcome);
  if (ended.status !== undefined) span.setAttribute('agentq.task.status', ended.status);
  if (ended.error) setError(span, ended.error.code, ended.error.message);
  span.end();
}

export function startChatSpan(
  tracing: AgentTracing,
  provider: ProviderName,
  request: { model: string; temperature: number | null },
): Span {
  return tracing.tracer.startSpan(
    `chat ${request.model}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': PROVIDER_NAME[provider],
        'gen_ai.request.model': request.model,
        ...(request.temperature === null
          ? {}
          : { 'gen_ai.request.temperature': request.temperature }),
      },
    },
    tracing.context,
  );
}

export function endChatSpan(span: Span, response: CompletionResponse): void {
  span.setAttributes({
    'gen_ai.response.model': response.model,
    'gen_ai.response.finish_reasons': [response.finishReason],
    // Counts the reply did not carry are unknown, not zero: left out.
    ...(response.usage.reported === false
      ? {}
      : {
          'gen_ai.usage.input_tokens': response.usage.inputTokens,
          'gen_ai.usage.output_tokens': response.usage.outputTokens,
        }),
  });
  span.end();
}

export function startToolSpan(tracing: AgentTracing, call: ToolCall): Span {
  return tracing.tracer.startSpan(
    `execute_tool ${call.name}`,
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.name,
        'gen_ai.tool.call.id': call.id,
        'gen_ai.tool.type': 'function',
      },
    },
    tracing.context,
  );
}

/** Ends a tool span; a result the model reads as an error marks the span failed. */
export function endToolSpan(span: Span, result: Record<string, unknown>): void {
  if (result.error !== undefined) setError(span, 'tool_error', String(result.error));
  span.end();
}

/**
 * Ends a span whose call threw: `error.type` is the task error code (the
 * message is the classified, redacted one, never the raw upstream error), or
 * why the attempt was aborted.
 */
export function failSpan(span: Span, err: unknown, signal: AbortSignal): void {
  const kind = abortKind(signal) ?? (err instanceof RunAbort ? err.kind : undefined);
  if (err instanceof TaskFailure) setError(span, err.code, err.message);
  else if (kind !== undefined) setError(span, kind, `attempt aborted: ${kind}`);
  else setError(span, 'internal_error', 'unexpected error (see the worker log)');
  span.end();
}

// Long tool errors (a fetched page's text) are cut: a span is not a log.
const MAX_MESSAGE = 300;

function setError(span: Span, type: string, message: string): void {
  const short = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
  span.setAttribute('error.type', type);
  span.recordException({ name: type, message: short });
  span.setStatus({ code: SpanStatusCode.ERROR, message: short });
}
