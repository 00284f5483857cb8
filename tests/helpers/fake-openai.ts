/**
 * A fake OpenAI chat-completions server for tests: `POST /v1/chat/completions`
 * on 127.0.0.1, checking requests the way the real API does (the bearer key;
 * every assistant tool call answered by a `tool` message before the next
 * request; no empty `tools`) and answering in the real wire format.
 *
 * Standalone: `tsx tests/helpers/fake-openai.ts` prints its base URL
 * (`FAKE_PORT` picks the port) and serves the scripted model until killed.
 */
import { pathToFileURL } from 'node:url';
import {
  approximateTokens,
  parseMaybeJson,
  startFakeLlmServer,
  type FakeError,
  type FakeLlmServer,
  type FakeLlmServerOptions,
  type FakeToolResult,
  type WireFormat,
  type WireInput,
  type WireResponse,
} from './fake-llm-server.ts';

export function startFakeOpenAI(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  return startFakeLlmServer(openaiWire, options);
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function errorResponse(
  status: number,
  message: string,
  fields: { type?: string; param?: string | null; code?: string | null } = {},
  headers?: Record<string, string>,
): WireResponse {
  return {
    status,
    body: {
      error: {
        message,
        type: fields.type ?? 'invalid_request_error',
        param: fields.param ?? null,
        code: fields.code ?? null,
      },
    },
    ...(headers ? { headers } : {}),
  };
}

function refuse(reason: string, param: string | null = null, code: string | null = null) {
  return { reason, response: errorResponse(400, reason, { param, code }) };
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p: unknown) => (isObject(p) && typeof p.text === 'string' ? p.text : ''))
      .join('');
  }
  return '';
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];

const openaiWire: WireFormat = {
  format: 'openai',
  basePath: '/v1',

  describe({ body }: WireInput) {
    const b = isObject(body) ? body : {};
    const messages = (Array.isArray(b.messages) ? b.messages : []).filter(isObject);
    const names = new Map<string, string>();
    let toolRounds = 0;
    for (const m of messages) {
      if (m.role !== 'assistant' || !Array.isArray(m.tool_calls) || m.tool_calls.length === 0)
        continue;
      toolRounds++;
      for (const call of m.tool_calls.filter(isObject)) {
        if (typeof call.id === 'string' && isObject(call.function))
          names.set(call.id, String(call.function.name));
      }
    }
    const toolResults: FakeToolResult[] = [];
    for (let i = messages.length - 1; i >= 0 && messages[i]?.role === 'tool'; i--) {
      const m = messages[i]!;
      toolResults.unshift({
        name: names.get(String(m.tool_call_id)) ?? '',
        content: parseMaybeJson(textOf(m.content)),
      });
    }
    const system = messages.find((m) => m.role === 'system' || m.role === 'developer');
    return {
      model: typeof b.model === 'string' ? b.model : '',
      prompt: textOf(messages.find((m) => m.role === 'user')?.content),
      system: system ? textOf(system.content) : undefined,
      tools: (Array.isArray(b.tools) ? b.tools : []).flatMap((t: unknown) =>
        isObject(t) && isObject(t.function) && typeof t.function.name === 'string'
          ? [t.function.name]
          : [],
      ),
      toolRounds,
      toolResults,
    };
  },

  validate({ method, path, headers, body }, apiKey) {
    if (method !== 'POST' || path.split('?')[0] !== '/v1/chat/completions') {
      const reason = `Invalid URL (${method} ${path})`;
      return { reason, response: errorResponse(404, reason) };
    }
    const auth = headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : '';
    if (!key) {
      const reason =
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
      return { reason, response: errorResponse(401, reason) };
    }
    if (apiKey !== undefined && key !== apiKey) {
      const reason = `Incorrect API key provided: ${key.slice(0, 3)}***${key.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`;
      return { reason, response: errorResponse(401, reason, { code: 'invalid_api_key' }) };
    }
    if (!isObject(body)) {
      return refuse(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      );
    }
    if (typeof body.model !== 'string' || body.model === '')
      return refuse('you must provide a model parameter');
    if (!Array.isArray(body.messages))
      return refuse("Missing required parameter: 'messages'.", 'messages');
    if (body.messages.length === 0) return refuse("[] is too short - 'messages'", 'messages');
    if (body.temperature !== undefined) {
      if (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 2) {
        return refuse(
          `Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got ${String(body.temperature)} instead.`,
          'temperature',
          'decimal_above_max_value',
        );
      }
    }
    if (body.tools !== undefined) {
      if (!Array.isArray(body.tools) || body.tools.length === 0)
        return refuse("[] is too short - 'tools'", 'tools');
      for (const [i, tool] of body.tools.entries()) {
        const fn = isObject(tool) ? tool.function : undefined;
        if (
          !isObject(tool) ||
          tool.type !== 'function' ||
          !isObject(fn) ||
          typeof fn.name !== 'string'
        ) {
          return refuse(
            `Missing required parameter: 'tools[${i}].function'.`,
            `tools[${i}].function`,
          );
        }
        if (!/^[a-zA-Z0-9_-]{1,64}$/.test(fn.name)) {
          return refuse(
            `Invalid 'tools[${i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.`,
            `tools[${i}].function.name`,
            'invalid_value',
          );
        }
        if (
          fn.parameters !== undefined &&
          (!isObject(fn.parameters) || fn.parameters.type !== 'object')
        ) {
          return refuse(
            `Invalid schema for function '${fn.name}': schema must be a JSON Schema of 'type: "object"', got 'type: "${String(isObject(fn.parameters) ? fn.parameters.type : fn.parameters)}"'.`,
            `tools[${i}].function.parameters`,
            'invalid_function_parameters',
          );
        }
      }
    } else if (body.tool_choice !== undefined) {
      return refuse(
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
        'tool_choice',
      );
    }

    // Tool calls must be answered, in the turn right after the call.
    let pending: { index: number; ids: Set<string> } | undefined;
    const unanswered = () =>
      refuse(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...(pending?.ids ?? [])].join(', ')}`,
        `messages.[${pending?.index ?? 0}].role`,
      );
    for (const [i, message] of body.messages.entries()) {
      if (!isObject(message) || typeof message.role !== 'string' || !ROLES.includes(message.role)) {
        const role = isObject(message) ? String(message.role) : String(message);
        return refuse(
          `Invalid value: '${role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
          `messages[${i}].role`,
          'invalid_value',
        );
      }
      if (message.role === 'tool') {
        if (!pending) {
          return refuse(
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
            `messages.[${i}].role`,
          );
        }
        if (typeof message.tool_call_id !== 'string') {
          return refuse(
            `Missing required parameter: 'messages.[${i}].tool_call_id'.`,
            `messages.[${i}].tool_call_id`,
          );
        }
        if (typeof message.content !== 'string' && !Array.isArray(message.content)) {
          return refuse(
            `Invalid type for 'messages[${i}].content': expected one of a string or array of objects, but got ${message.content === null ? 'null' : typeof message.content} instead.`,
            `messages[${i}].content`,
            'invalid_type',
          );
        }
        pending.ids.delete(message.tool_call_id);
        continue;
      }
      if (pending && pending.ids.size > 0) return unanswered();
      pending = undefined;
      if (message.role === 'assistant' && message.tool_calls !== undefined) {
        if (!Array.isArray(message.tool_calls) || message.tool_calls.length === 0) {
          return refuse(
            `[] is too short - 'messages.[${i}].tool_calls'`,
            `messages.[${i}].tool_calls`,
          );
        }
        const ids = new Set<string>();
        for (const [j, call] of message.tool_calls.entries()) {
          const fn = isObject(call) ? call.function : undefined;
          if (
            !isObject(call) ||
            typeof call.id !== 'string' ||
            call.type !== 'function' ||
            !isObject(fn)
          ) {
            return refuse(
              `Missing required parameter: 'messages.[${i}].tool_calls.[${j}].function'.`,
            );
          }
          if (typeof fn.arguments !== 'string') {
            return refuse(
              `Invalid type for 'messages.[${i}].tool_calls.[${j}].function.arguments': expected a string, but got ${typeof fn.arguments} instead.`,
              `messages.[${i}].tool_calls.[${j}].function.arguments`,
              'invalid_type',
            );
          }
          ids.add(call.id);
        }
        pending = { index: i, ids };
      } else if (
        message.role !== 'assistant' &&
        typeof message.content !== 'string' &&
        !Array.isArray(message.content)
      ) {
        return refuse(
          `Invalid type for 'messages[${i}].content': expected one of a string or array of objects, but got ${message.content === null ? 'null' : typeof message.content} instead.`,
          `messages[${i}].content`,
          'invalid_type',
        );
      }
    }
    if (pending && pending.ids.size > 0) return unanswered();
    return undefined;
  },

  renderAnswer(answer, request, nextId) {
    const calls =
      'toolCalls' in answer
        ? answer.toolCalls.map((call) => ({
            id: `call_${nextId().toString(36).padStart(24, '0')}`,
            type: 'function',
            function: {
              name: call.name,
              arguments:
                typeof call.arguments === 'string'
                  ? call.arguments
                  : JSON.stringify(call.arguments ?? {}),
            },
          }))
        : [];
    const content = answer.text ?? null;
    const inputTokens =
      answer.usage?.inputTokens ?? approximateTokens(JSON.stringify(request.body));
    const outputTokens =
      answer.usage?.outputTokens ?? approximateTokens(JSON.stringify({ content, calls }));
    const id = nextId();
    return {
      status: 200,
      headers: { 'x-request-id': `req_${id}` },
      body: {
        id: `chatcmpl-${id}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: request.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content,
              refusal: null,
              ...(calls.length > 0 ? { tool_calls: calls } : {}),
              annotations: [],
            },
            logprobs: null,
            finish_reason: calls.length > 0 ? 'tool_calls' : 'stop',
          },
        ],
        usage: {
          prompt_tokens: inputTokens,
          completion_tokens: outputTokens,
          total_tokens: inputTokens + outputTokens,
        },
        system_fingerprint: 'fp_fake',
      },
    };
  },

  renderError(error: FakeError, request) {
    const headers: Record<string, string> = {};
    if (error.retryAfter !== undefined) headers['retry-after'] = String(error.retryAfter);
    if (error.retryAfterMs !== undefined) headers['retry-after-ms'] = String(error.retryAfterMs);
    const defaults = defaultError(error.status, error.code, request.model);
    return errorResponse(
      error.status,
      error.message ?? defaults.message,
      { type: defaults.type, code: error.code ?? defaults.code },
      headers,
    );
  },
};

/** The messages and types the real API uses for each kind of error. */
function defaultError(status: number, code: string | undefined, model: string) {
  if (status === 429 && code === 'insufficient_quota') {
    return {
      type: 'insufficient_quota',
      code: 'insufficient_quota',
      message:
        'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
    };
  }
  switch (status) {
    case 401:
      return {
        type: 'invalid_request_error',
        code: 'invalid_api_key',
        message:
          'Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys.',
      };
    case 403:
      return {
        type: 'invalid_request_error',
        code: 'unsupported_country_region_territory',
        message: 'Country, region, or territory not supported',
      };
    case 404:
      return {
        type: 'invalid_request_error',
        code: 'model_not_found',
        message: `The model \`${model}\` does not exist or you do not have access to it.`,
      };
    case 429:
      return {
        type: 'requests',
        code: 'rate_limit_exceeded',
        message: `Rate limit reached for ${model} on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.`,
      };
    default:
      return status >= 500
        ? {
            type: 'server_error',
            code: null,
            message: 'The server had an error while processing your request. Sorry about that!',
          }
        : { type: 'invalid_request_error', code: null, message: 'Invalid request.' };
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const fake = await startFakeOpenAI({ port: Number(process.env.FAKE_PORT ?? 0) });
  console.log(fake.url);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
