/**
 * A fake Gemini generateContent server for tests:
 * `POST /v1beta/models/{model}:generateContent` on 127.0.0.1, checking requests
 * the way the real API does (the `x-goog-api-key` header; function responses
 * right after the function call turn, one per call, with object responses; only
 * the Schema keywords Gemini knows) and answering in the real wire format.
 *
 * Standalone: `tsx tests/helpers/fake-gemini.ts` prints its base URL
 * (`FAKE_PORT` picks the port) and serves the scripted model until killed.
 */
import { pathToFileURL } from 'node:url';
import {
  approximateTokens,
  startFakeLlmServer,
  type FakeError,
  type FakeLlmServer,
  type FakeLlmServerOptions,
  type FakeToolResult,
  type WireFormat,
  type WireInput,
  type WireResponse,
} from './fake-llm-server.ts';

export function startFakeGemini(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  return startFakeLlmServer(geminiWire, options);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const PATH = /^\/v1beta\/models\/([^/:?]+):generateContent(?:\?.*)?$/;

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'Request contains an invalid argument.',
  401: 'Request had invalid authentication credentials.',
  403: 'The caller does not have permission',
  404: 'models/unknown is not found for API version v1beta, or is not supported for generateContent.',
  429: 'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
};

/** The keywords of Gemini's Schema object; anything else is "Unknown name". */
const SCHEMA_KEYS = new Set([
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

const REQUEST_KEYS = new Set([
  'contents',
  'tools',
  'toolConfig',
  'safetySettings',
  'systemInstruction',
  'generationConfig',
  'cachedContent',
]);

const PART_KEYS = [
  'text',
  'inlineData',
  'functionCall',
  'functionResponse',
  'fileData',
  'executableCode',
  'codeExecutionResult',
];

function errorResponse(status: number, message: string, details?: unknown[]): WireResponse {
  return {
    status,
    body: {
      error: {
        code: status,
        message,
        status: STATUS_NAMES[status] ?? 'UNKNOWN',
        ...(details && details.length > 0 ? { details } : {}),
      },
    },
  };
}

function refuse(reason: string, status = 400, details?: unknown[]) {
  return { reason, response: errorResponse(status, reason, details) };
}

const textOf = (content: unknown): string =>
  isObject(content) && Array.isArray(content.parts)
    ? content.parts
        .map((p: unknown) => (isObject(p) && typeof p.text === 'string' ? p.text : ''))
        .join('')
    : '';

const partsOf = (content: unknown): Json[] =>
  isObject(content) && Array.isArray(content.parts) ? content.parts.filter(isObject) : [];

const geminiWire: WireFormat = {
  format: 'gemini',
  basePath: '',

  describe({ path, body }: WireInput) {
    const b = isObject(body) ? body : {};
    const contents = (Array.isArray(b.contents) ? b.contents : []).filter(isObject);
    const last = contents.at(-1);
    const lastResponses = partsOf(last).filter((p) => isObject(p.functionResponse));
    const toolResults: FakeToolResult[] = lastResponses.map((p) => {
      const r = p.functionResponse as Json;
      return { name: String(r.name), content: r.response };
    });
    return {
      model: decodeURIComponent(PATH.exec(path)?.[1] ?? ''),
      prompt: textOf(
        contents.find((c) => c.role === 'user' && partsOf(c).some((p) => 'text' in p)),
      ),
      system: b.systemInstruction === undefined ? undefined : textOf(b.systemInstruction),
      tools: (Array.isArray(b.tools) ? b.tools : []).flatMap((t: unknown) =>
        isObject(t) && Array.isArray(t.functionDeclarations)
          ? t.functionDeclarations.flatMap((d: unknown) =>
              isObject(d) && typeof d.name === 'string' ? [d.name] : [],
            )
          : [],
      ),
      toolRounds: contents.filter(
        (c) => c.role === 'model' && partsOf(c).some((p) => isObject(p.functionCall)),
      ).length,
      toolResults,
    };
  },

  validate({ method, path, headers, body }, apiKey) {
    const match = PATH.exec(path);
    if (method !== 'POST' || !match) {
      return refuse(`The requested URL ${path} was not found on this server.`, 404);
    }
    const key = headers['x-goog-api-key'];
    if (typeof key !== 'string' || key === '') {
      return refuse(
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        403,
      );
    }
    if (apiKey !== undefined && key !== apiKey) {
      return refuse('API key not valid. Please pass a valid API key.', 400, [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'API_KEY_INVALID',
          domain: 'googleapis.com',
          metadata: { service: 'generativelanguage.googleapis.com' },
        },
        {
          '@type': 'type.googleapis.com/google.rpc.LocalizedMessage',
          locale: 'en-US',
          message: 'API key not valid. Please pass a valid API key.',
        },
      ]);
    }
    if (!isObject(body)) return refuse('Invalid JSON payload received. Unexpected token.');
    for (const k of Object.keys(body)) {
      if (!REQUEST_KEYS.has(k))
        return refuse(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    }
    const temperature = isObject(body.generationConfig)
      ? body.generationConfig.temperature
      : undefined;
    if (
      temperature !== undefined &&
      (typeof temperature !== 'number' || temperature < 0 || temperature > 2)
    ) {
      return refuse(
        `* GenerateContentRequest.generation_config.temperature: temperature must be between 0 and 2, got ${String(temperature)}`,
      );
    }
    const toolProblem = validateTools(body.tools);
    if (toolProblem) return refuse(toolProblem);
    if (body.systemInstruction !== undefined && partsOf(body.systemInstruction).length === 0) {
      return refuse(
        '* GenerateContentRequest.system_instruction.parts: contents.parts must not be empty.',
      );
    }
    if (!Array.isArray(body.contents) || body.contents.length === 0) {
      return refuse('* GenerateContentRequest.contents: contents is not specified');
    }
    const problem = validateContents(body.contents);
    return problem ? refuse(problem) : undefined;
  },

  renderAnswer(answer, request) {
    const parts: Json[] = [];
    if (answer.text) parts.push({ text: answer.text });
    if ('toolCalls' in answer) {
      for (const call of answer.toolCalls) {
        const args =
          typeof call.arguments === 'string'
            ? (JSON.parse(call.arguments) as unknown)
            : call.arguments;
        parts.push({ functionCall: { name: call.name, args: args ?? {} } });
      }
    }
    if (parts.length === 0) parts.push({ text: '' });
    const inputTokens =
      answer.usage?.inputTokens ?? approximateTokens(JSON.stringify(request.body));
    const outputTokens = answer.usage?.outputTokens ?? approximateTokens(JSON.stringify(parts));
    return {
      status: 200,
      body: {
        candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP', index: 0 }],
        usageMetadata: {
          promptTokenCount: inputTokens,
          candidatesTokenCount: outputTokens,
          totalTokenCount: inputTokens + outputTokens,
          promptTokensDetails: [{ modality: 'TEXT', tokenCount: inputTokens }],
        },
        modelVersion: request.model,
        responseId: `fake-${request.index}`,
      },
    };
  },

  renderError(error: FakeError, request) {
    const details: unknown[] = [];
    if (error.details) {
      details.push(...error.details);
    } else {
      if (error.code === 'API_KEY_INVALID') {
        details.push({
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'API_KEY_INVALID',
          domain: 'googleapis.com',
          metadata: { service: 'generativelanguage.googleapis.com' },
        });
      }
      if (error.status === 429) {
        // Gemini names the quota that ran out: per minute (wait) or per day.
        const perDay = error.code === 'insufficient_quota';
        details.push({
          '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
          violations: [
            {
              quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
              quotaId: perDay
                ? 'GenerateRequestsPerDayPerProjectPerModel-FreeTier'
                : 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier',
              quotaDimensions: { location: 'global', model: request.model },
              quotaValue: perDay ? '50' : '10',
            },
          ],
        });
      }
      if (error.retryAfter !== undefined) {
        details.push({
          '@type': 'type.googleapis.com/google.rpc.RetryInfo',
          retryDelay: `${error.retryAfter}s`,
        });
      }
    }
    const message =
      error.message ??
      (error.code === 'API_KEY_INVALID'
        ? 'API key not valid. Please pass a valid API key.'
        : (DEFAULT_MESSAGES[error.status] ?? 'Unknown error.'));
    return errorResponse(error.status, message, details);
  },
};

function validateTools(tools: unknown): string | undefined {
  if (tools === undefined) return undefined;
  if (!Array.isArray(tools)) return "Invalid JSON payload received. Invalid value at 'tools'.";
  for (const [i, tool] of tools.entries()) {
    if (!isObject(tool) || !Array.isArray(tool.functionDeclarations)) continue;
    for (const [j, decl] of tool.functionDeclarations.entries()) {
      const at = `tools[${i}].function_declarations[${j}]`;
      if (
        !isObject(decl) ||
        typeof decl.name !== 'string' ||
        !/^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$/.test(decl.name)
      ) {
        return `* GenerateContentRequest.${at}.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.) or dashes (-), with a maximum length of 64.`;
      }
      if (decl.parameters !== undefined) {
        const problem = validateSchema(decl.parameters, `${at}.parameters`);
        if (problem) return problem;
      }
    }
  }
  return undefined;
}

function validateSchema(schema: unknown, at: string): string | undefined {
  if (!isObject(schema)) return `Invalid JSON payload received. Invalid value at '${at}'.`;
  for (const key of Object.keys(schema)) {
    if (!SCHEMA_KEYS.has(key))
      return `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`;
  }
  const type = typeof schema.type === 'string' ? schema.type.toUpperCase() : undefined;
  if (
    type === 'OBJECT' &&
    (!isObject(schema.properties) || Object.keys(schema.properties).length === 0)
  ) {
    return `* GenerateContentRequest.${at}.properties: should be non-empty for OBJECT type`;
  }
  if (isObject(schema.properties)) {
    for (const [name, sub] of Object.entries(schema.properties)) {
      const problem = validateSchema(sub, `${at}.properties[${name}].value`);
      if (problem) return problem;
    }
  }
  if (schema.items !== undefined) return validateSchema(schema.items, `${at}.items`);
  return undefined;
}

/** The turn-order rules of function calling, as the real API enforces them. */
function validateContents(contents: unknown[]): string | undefined {
  let previous: { role: string; calls: string[]; responses: number } | undefined;
  for (const [i, content] of contents.entries()) {
    const at = `GenerateContentRequest.contents[${i}]`;
    if (!isObject(content)) return `* ${at}: Invalid value.`;
    const role = content.role ?? 'user';
    if (role !== 'user' && role !== 'model' && role !== 'function')
      return 'Please use a valid role: user, model.';
    if (!Array.isArray(content.parts) || content.parts.length === 0) {
      return `* ${at}.parts: contents.parts must not be empty.`;
    }
    const calls: string[] = [];
    let responses = 0;
    for (const [j, part] of content.parts.entries()) {
      const fields = isObject(part) ? PART_KEYS.filter((k) => k in part) : [];
      if (!isObject(part) || fields.length !== 1) {
        return `* ${at}.parts[${j}].data: required oneof field 'data' must have one initialized field`;
      }
      if ('text' in part && typeof part.text !== 'string') {
        return `Invalid value at 'contents[${i}].parts[${j}].text' (TYPE_STRING), ${JSON.stringify(part.text)}`;
      }
      if (isObject(part.functionCall)) {
        if (role !== 'model')
          return `* ${at}.parts[${j}]: function call parts are only allowed in model turns.`;
        if (!isObject(part.functionCall.args) && part.functionCall.args !== undefined) {
          return `Invalid value at 'contents[${i}].parts[${j}].function_call.args' (type.googleapis.com/google.protobuf.Struct), ${JSON.stringify(part.functionCall.args)}`;
        }
        calls.push(String(part.functionCall.name));
      }
      if ('functionResponse' in part) {
        const fr = part.functionResponse;
        if (!isObject(fr) || !isObject(fr.response)) {
          return `Invalid value at 'contents[${i}].parts[${j}].function_response.response' (type.googleapis.com/google.protobuf.Struct), ${JSON.stringify(isObject(fr) ? fr.response : fr)}`;
        }
        if (!previous || previous.calls.length === 0) {
          return 'Please ensure that function response turn comes immediately after a function call turn.';
        }
        if (!previous.calls.includes(String(fr.name))) {
          return `* ${at}.parts[${j}].function_response.name: no function call named "${String(fr.name)}" in the function call turn.`;
        }
        responses++;
      }
    }
    if (calls.length > 0 && previous && previous.role === 'model') {
      return 'Please ensure that function call turn comes immediately after a user turn or after a function response turn.';
    }
    if (previous && previous.calls.length > 0 && responses !== previous.calls.length) {
      return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
    }
    previous = { role: String(role), calls, responses };
  }
  return undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fake = await startFakeGemini({ port: Number(process.env.FAKE_PORT ?? 0) });
  console.log(fake.url);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
