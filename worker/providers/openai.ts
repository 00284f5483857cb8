/**
 * The `openai` provider: chat completions with function tools, through the
 * official SDK. `baseURL` points it at any compatible server (Ollama, vLLM,
 * OpenRouter, the test fake).
 */
import OpenAI from 'openai';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { hostsOf } from './redact.ts';
import { classifyOpenAIError, guardProviderCall } from './classify-error.ts';
import type {
  ChatMessage,
  CompletionRequest,
  CompletionResponse,
  Provider,
  ToolCall,
} from './provider.ts';

export interface OpenAIProviderOptions {
  /** `OPENAI_API_KEY`. Optional when `baseURL` names a server that needs none. */
  apiKey?: string | undefined;
  /** `OPENAI_BASE_URL`, e.g. `http://localhost:11434/v1`. Default: api.openai.com. */
  baseURL?: string | undefined;
  /** Per-request timeout. Default 120,000 ms. */
  requestTimeoutMs?: number | undefined;
}

/** Local servers (Ollama, vLLM) ignore the key, but the SDK refuses to start without one. */
const PLACEHOLDER_KEY = 'agentq-no-key';

export function createOpenAIProvider(options: OpenAIProviderOptions = {}): Provider {
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  const configured = Boolean(options.apiKey || options.baseURL);
  const client = configured
    ? new OpenAI({
        apiKey: options.apiKey || PLACEHOLDER_KEY,
        baseURL: options.baseURL,
        // No SDK retries: a failed call fails the attempt, and the job's retry
        // policy owns the backoff (honouring Retry-After), so one slow provider
        // cannot hold a worker slot through hidden retries.
        maxRetries: 0,
        timeout: timeoutMs,
      })
    : undefined;

  const hosts = hostsOf(options.baseURL);

  return {
    name: 'openai',
    async complete(request: CompletionRequest): Promise<CompletionResponse> {
      // Checked per call rather than at creation so a worker can build every
      // provider up front and only the tasks that use this one fail.
      if (!client) {
        throw new TaskFailure(
          'provider_not_configured',
          'openai: no API key on this worker (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server)',
        );
      }
      const completion = await guardProviderCall(
        'openai',
        { signal: request.signal, timeoutMs, hosts },
        classifyOpenAIError,
        (signal) =>
          client.chat.completions.create(
            {
              model: request.model,
              messages: request.messages.map(toOpenAIMessage),
              // The API rejects an empty `tools` array, and `tool_choice` without tools.
              ...(request.tools.length > 0
                ? {
                    tools: request.tools.map((t) => ({
                      type: 'function' as const,
                      function: {
                        name: t.name,
                        description: t.description,
                        parameters: t.parameters,
                      },
                    })),
                    tool_choice: 'auto' as const,
                  }
                : {}),
              ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
            },
            { signal },
          ),
      );
      return fromCompletion(completion);
    },
  };
}

function toOpenAIMessage(message: ChatMessage): OpenAI.ChatCompletionMessageParam {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      return {
        role: 'assistant',
        content: message.content,
        // An empty tool_calls array is a 400; leave the field out instead.
        ...(message.toolCalls.length > 0
          ? {
              tool_calls: message.toolCalls.map((call) => ({
                id: call.id,
                type: 'function' as const,
                // Echo the model's own string, even when it was not valid JSON.
                function: { name: call.name, arguments: call.rawArguments },
              })),
            }
          : {}),
      };
    case 'tool':
      return {
        role: 'tool',
        tool_call_id: message.toolCallId,
        content: JSON.stringify(message.result),
      };
  }
}

function fromCompletion(completion: OpenAI.ChatCompletion): CompletionResponse {
  const choice = completion.choices?.[0];
  if (!choice) {
    // A 200 without choices is a broken answer (seen from overloaded
    // compatible servers and proxies), not a verdict on our request: retry.
    throw new TaskFailure('provider_unavailable', 'openai: the response had no choices');
  }
  const message = choice.message;
  const toolCalls: ToolCall[] = (message.tool_calls ?? []).flatMap((call) =>
    call.type === 'function'
      ? [parseToolCall(call.id, call.function.name, call.function.arguments)]
      : [],
  );
  if (choice.finish_reason === 'content_filter' && !message.content && toolCalls.length === 0) {
    throw new TaskFailure(
      'provider_rejected',
      'openai: the answer was withheld by the content filter',
    );
  }
  return {
    text: message.content || null,
    toolCalls,
    finishReason: choice.finish_reason ?? 'unknown',
    usage: {
      inputTokens: completion.usage?.prompt_tokens ?? 0,
      outputTokens: completion.usage?.completion_tokens ?? 0,
      // Some compatible servers (and streaming proxies) leave usage out.
      reported: typeof completion.usage?.prompt_tokens === 'number',
    },
    model: completion.model,
  };
}

function parseToolCall(id: string, name: string, raw: string): ToolCall {
  // Models send "" for a function without parameters.
  if (raw.trim() === '') return { id, name, arguments: {}, rawArguments: raw };
  try {
    return { id, name, arguments: JSON.parse(raw) as unknown, rawArguments: raw };
  } catch (err) {
    return {
      id,
      name,
      arguments: undefined,
      rawArguments: raw,
      argumentsError: err instanceof Error ? err.message : String(err),
    };
  }
}
