/**
 * The `google` provider: Gemini generateContent with function declarations,
 * through `@google/generative-ai` 0.24. Everything that knows that SDK lives in
 * this file, so moving to `@google/genai` later stays a one-file change.
 */
import {
  GoogleGenerativeAI,
  type Content,
  type FunctionDeclaration,
  type FunctionDeclarationSchema,
  type GenerateContentResponse,
  type Part,
} from '@google/generative-ai';
import { TaskFailure } from '../../shared/tasks/task-error.ts';
import { hostsOf } from './redact.ts';
import { classifyGoogleError, guardProviderCall } from './classify-error.ts';
import type {
  ChatMessage,
  CompletionRequest,
  CompletionResponse,
  JsonSchema,
  Provider,
  ToolCall,
  ToolDefinition,
} from './provider.ts';

export interface GoogleProviderOptions {
  /** `GOOGLE_API_KEY` / `GEMINI_API_KEY`. */
  apiKey?: string | undefined;
  /** `GOOGLE_BASE_URL`, without the `/v1beta` part. Default: generativelanguage.googleapis.com. */
  baseUrl?: string | undefined;
  /** Per-request timeout. Default 120,000 ms. */
  requestTimeoutMs?: number | undefined;
}

/** Finish reasons that mean the answer was withheld, not finished. */
const BLOCKED_FINISH_REASONS = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
]);

export function createGoogleProvider(options: GoogleProviderOptions = {}): Provider {
  const timeoutMs = options.requestTimeoutMs ?? 120_000;
  const client = options.apiKey ? new GoogleGenerativeAI(options.apiKey) : undefined;
  // The SDK appends `/v1beta/models/…` itself: accept the URL with or without it.
  const baseUrl = options.baseUrl?.replace(/\/+$/, '').replace(/\/v1beta$/, '');

  const hosts = hostsOf(options.baseUrl);

  return {
    name: 'google',
    async complete(request: CompletionRequest): Promise<CompletionResponse> {
      // Checked per call, as for openai: only the tasks using this provider fail.
      if (!client) {
        throw new TaskFailure(
          'provider_not_configured',
          'google: no API key on this worker (set GOOGLE_API_KEY or GEMINI_API_KEY)',
        );
      }
      const system = request.messages.flatMap((m) => (m.role === 'system' ? [m.content] : []));
      const model = client.getGenerativeModel(
        {
          model: request.model,
          ...(request.tools.length > 0
            ? { tools: [{ functionDeclarations: request.tools.map(toFunctionDeclaration) }] }
            : {}),
          ...(system.length > 0 ? { systemInstruction: system.join('\n\n') } : {}),
          generationConfig:
            request.temperature === undefined ? {} : { temperature: request.temperature },
        },
        // No `timeout` here on purpose: the SDK arms a timer for it that it never
        // clears (it would keep the process alive for the full timeout after
        // every request). guardProviderCall applies the timeout through the signal.
        baseUrl ? { baseUrl } : {},
      );
      const contents = toContents(request.messages);
      const result = await guardProviderCall(
        'google',
        { signal: request.signal, timeoutMs, hosts },
        classifyGoogleError,
        (signal) => model.generateContent({ contents }, { signal }),
      );
      const priorCalls = request.messages.reduce(
        (n, m) => n + (m.role === 'assistant' ? m.toolCalls.length : 0),
        0,
      );
      return fromResponse(result.response, request.model, priorCalls);
    },
  };
}

/** History → Gemini contents. System messages travel as systemInstruction instead. */
function toContents(messages: ChatMessage[]): Content[] {
  const contents: Content[] = [];
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        break;
      case 'user':
        contents.push({ role: 'user', parts: [{ text: message.content }] });
        break;
      case 'assistant':
        contents.push(modelTurn(message));
        break;
      case 'tool': {
        // All results of one parallel call go back in one function turn, in order.
        const part: Part = { functionResponse: { name: message.name, response: message.result } };
        const last = contents.at(-1);
        if (last?.role === 'function') last.parts.push(part);
        else contents.push({ role: 'function', parts: [part] });
        break;
      }
    }
  }
  return contents;
}

function modelTurn(message: Extract<ChatMessage, { role: 'assistant' }>): Content {
  // The model's own content, echoed verbatim: it may carry parts we do not
  // model (thought signatures on function calls) that Gemini expects back.
  const original = message.providerData as { content?: Content } | undefined;
  if (
    original?.content &&
    Array.isArray(original.content.parts) &&
    original.content.parts.length > 0
  ) {
    return { role: 'model', parts: original.content.parts };
  }
  const parts: Part[] = [];
  if (message.content) parts.push({ text: message.content });
  for (const call of message.toolCalls) {
    parts.push({
      functionCall: { name: call.name, args: isObject(call.arguments) ? call.arguments : {} },
    });
  }
  // Gemini rejects a turn without parts.
  if (parts.length === 0) parts.push({ text: '' });
  return { role: 'model', parts };
}

function fromResponse(
  response: GenerateContentResponse,
  model: string,
  priorCalls: number,
): CompletionResponse {
  const candidate = response.candidates?.[0];
  const blockReason = response.promptFeedback?.blockReason;
  if (!candidate) {
    if (blockReason) {
      throw new TaskFailure('provider_rejected', `google: the prompt was blocked (${blockReason})`);
    }
    // Same rule as openai: an answer without candidates is broken, retry it.
    throw new TaskFailure('provider_unavailable', 'google: the response had no candidates');
  }
  const finishReason = candidate.finishReason ?? 'STOP';
  const parts = candidate.content?.parts ?? [];
  const calls = parts.flatMap((p) => (p.functionCall ? [p.functionCall] : []));
  // Thinking models may return their thought summaries as text parts marked `thought`.
  const text = parts
    .filter((p) => typeof p.text === 'string' && !(p as { thought?: boolean }).thought)
    .map((p) => p.text)
    .join('');

  if (BLOCKED_FINISH_REASONS.has(finishReason) && calls.length === 0 && !text) {
    throw new TaskFailure(
      'provider_rejected',
      `google: the answer was blocked (finishReason ${finishReason})`,
    );
  }
  if (finishReason === 'MALFORMED_FUNCTION_CALL') {
    // The model tried to call a tool but produced something Gemini could not
    // parse; there is no call to report back, so fail the attempt.
    throw new TaskFailure(
      'provider_rejected',
      'google: the model produced a malformed function call',
    );
  }

  // Gemini has no call ids: number them after the calls already in this run,
  // so they are unique within it and stable across the round trip.
  const toolCalls: ToolCall[] = calls.map((call, i) => {
    const args: unknown = call.args ?? {};
    return {
      id: `call_${priorCalls + i + 1}`,
      name: call.name,
      arguments: args,
      rawArguments: JSON.stringify(args),
    };
  });
  const usage = response.usageMetadata as
    (GenerateContentResponse['usageMetadata'] & { thoughtsTokenCount?: number }) | undefined;
  return {
    text: text || null,
    toolCalls,
    finishReason,
    usage: {
      inputTokens: usage?.promptTokenCount ?? 0,
      // Thinking tokens are billed as output but reported apart.
      outputTokens: (usage?.candidatesTokenCount ?? 0) + (usage?.thoughtsTokenCount ?? 0),
      reported: typeof usage?.promptTokenCount === 'number',
    },
    model: (response as { modelVersion?: string }).modelVersion ?? model,
    providerData: { content: candidate.content },
  };
}

function toFunctionDeclaration(tool: ToolDefinition): FunctionDeclaration {
  const parameters = toGeminiSchema(tool.parameters);
  const hasProperties =
    isObject(parameters.properties) && Object.keys(parameters.properties).length > 0;
  return {
    name: tool.name,
    description: tool.description,
    // Gemini rejects an OBJECT schema with no properties: leave a
    // parameterless tool's schema out instead.
    ...(hasProperties ? { parameters: parameters as unknown as FunctionDeclarationSchema } : {}),
  };
}

/** The keywords Gemini's OpenAPI-subset Schema accepts; anything else is a 400. */
const GEMINI_SCHEMA_KEYS = new Set([
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'enum',
  'items',
  'minItems',
  'maxItems',
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'minLength',
  'maxLength',
  'pattern',
  'minimum',
  'maximum',
  'anyOf',
  'propertyOrdering',
  'default',
  'example',
]);

/**
 * JSON Schema → Gemini Schema: keeps the keywords Gemini knows (dropping
 * `$schema`, `additionalProperties`, …), recursively; turns `type: [T, "null"]`
 * into `type: T, nullable: true` and a string `const` into a one-value enum.
 */
export function toGeminiSchema(schema: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'type' && Array.isArray(value)) {
      const types = value.filter((t) => t !== 'null');
      if (types[0] !== undefined) out.type = types[0];
      if (types.length < value.length) out.nullable = true;
    } else if (key === 'const' && typeof value === 'string') {
      out.enum = [value];
    } else if (!GEMINI_SCHEMA_KEYS.has(key)) {
      continue;
    } else if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([name, sub]) => [
          name,
          isObject(sub) ? toGeminiSchema(sub) : sub,
        ]),
      );
    } else if (key === 'items' && isObject(value)) {
      out.items = toGeminiSchema(value);
    } else if (key === 'anyOf' && Array.isArray(value)) {
      out.anyOf = value.map((sub: unknown) => (isObject(sub) ? toGeminiSchema(sub) : sub));
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
