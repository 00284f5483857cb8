/**
 * The part the fake OpenAI and Gemini servers share: a real `node:http` server
 * on 127.0.0.1 that records every request (and whether the client went away
 * before the answer), asks a scriptable handler what to answer, and lets a
 * wire format (fake-openai.ts, fake-gemini.ts) validate and render.
 *
 * The default handler is the scripted model (scripted-model.ts), steered by
 * directives in the prompt.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { scriptedModel } from './scripted-model.ts';

export type FakeFormat = 'openai' | 'gemini';

/** One tool result the client sent back, with its content parsed when it is JSON. */
export interface FakeToolResult {
  name: string;
  content: unknown;
}

/** A request as the fake saw it: the wire body plus a neutral reading of it. */
export interface FakeLlmRequest {
  /** 0-based arrival order at this server. */
  index: number;
  format: FakeFormat;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (the raw text when it was not JSON). */
  body: unknown;
  model: string;
  /** The first user message's text: the task's prompt, where directives live. */
  prompt: string;
  system: string | undefined;
  /** Names of the tools offered. */
  tools: string[];
  /** Model turns in the history that called tools. */
  toolRounds: number;
  /** The results closing the conversation (answers to the last tool-calling turn), else []. */
  toolResults: FakeToolResult[];
  /** Why the fake refused the request as the real API would (400 etc.), if it did. */
  rejected: string | undefined;
  /** The client closed the connection before the fake answered. */
  aborted: boolean;
  /** The status the fake answered with; undefined while pending or when aborted. */
  status: number | undefined;
}

export interface FakeToolCall {
  name: string;
  /** An object, or (OpenAI) a string sent verbatim, so tests can send invalid JSON. */
  arguments: unknown;
}

export interface FakeError {
  status: number;
  /** OpenAI: `error.code` (`invalid_api_key`, `insufficient_quota`, …). Gemini: `API_KEY_INVALID`
   *  adds an ErrorInfo detail, `insufficient_quota` a per-day QuotaFailure. */
  code?: string;
  message?: string;
  /** Seconds (or an HTTP date) for the `retry-after` header (OpenAI) / RetryInfo (Gemini). */
  retryAfter?: number | string;
  /** OpenAI only: the `retry-after-ms` header. */
  retryAfterMs?: number;
  /** Gemini only: replaces the generated `error.details`. */
  details?: unknown[];
}

export interface FakeUsage {
  inputTokens: number;
  outputTokens: number;
}

/** What to answer, independent of the wire format. */
export type FakeReply =
  | { text: string; usage?: FakeUsage }
  | { toolCalls: FakeToolCall[]; text?: string; usage?: FakeUsage }
  | { error: FakeError }
  | { delayMs: number; then: FakeReply }
  /** Never answer; the request ends when the client aborts (or the fake closes). */
  | { hang: true }
  /** Destroy the connection without an answer (a connection reset). */
  | { reset: true }
  /** Send exactly this (for shapes the neutral replies cannot express). */
  | { raw: { status?: number; body: unknown; headers?: Record<string, string> } };

export type FakeAnswer = Extract<FakeReply, { text: string } | { toolCalls: FakeToolCall[] }>;

export type FakeHandler = (request: FakeLlmRequest) => FakeReply | Promise<FakeReply>;

export interface WireResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface WireInput {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** What a wire format plugs into the server. */
export interface WireFormat {
  format: FakeFormat;
  /** Appended to the origin to make the URL handed to the SDK. */
  basePath: string;
  /** A tolerant neutral reading; must not throw on malformed bodies. */
  describe(
    input: WireInput,
  ): Pick<FakeLlmRequest, 'model' | 'prompt' | 'system' | 'tools' | 'toolRounds' | 'toolResults'>;
  /** The error the real API would answer, or undefined when the request is acceptable. */
  validate(
    input: WireInput,
    apiKey: string | undefined,
  ): { reason: string; response: WireResponse } | undefined;
  renderAnswer(answer: FakeAnswer, request: FakeLlmRequest, nextId: () => number): WireResponse;
  renderError(error: FakeError, request: FakeLlmRequest): WireResponse;
}

export interface FakeLlmServerOptions {
  /** When set, any other key is refused the way the real API refuses a wrong key. */
  apiKey?: string;
  port?: number;
}

export interface FakeLlmServer {
  /** The base URL to give the SDK. */
  url: string;
  requests: FakeLlmRequest[];
  setHandler(handler: FakeHandler): void;
  /** Forget the requests and the scripted model's counters; back to the scripted model. */
  reset(): void;
  /** Requests whose prompt contains `promptSubstring` (all when omitted). */
  requestCount(promptSubstring?: string): number;
  /** Resolves when `predicate(requests)` holds; rejects after `timeoutMs` (default 5 s). */
  waitFor(predicate: (requests: FakeLlmRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeLlmServer(
  wire: WireFormat,
  options: FakeLlmServerOptions = {},
): Promise<FakeLlmServer> {
  const requests: FakeLlmRequest[] = [];
  let handler: FakeHandler = scriptedModel();
  let idCounter = 0;
  const nextId = () => ++idCounter;
  const watchers = new Set<() => void>();
  const changed = () => watchers.forEach((w) => w());

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // left as text; validate() refuses it like the real API
      }
      const input: WireInput = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body,
      };
      const problem = wire.validate(input, options.apiKey);
      const record: FakeLlmRequest = {
        index: requests.length,
        format: wire.format,
        ...input,
        ...wire.describe(input),
        rejected: problem?.reason,
        aborted: false,
        status: undefined,
      };
      requests.push(record);
      res.once('close', () => {
        if (!res.writableFinished) {
          record.aborted = true;
          changed();
        }
      });
      changed();
      void respond(record, res, problem?.response).finally(changed);
    });
  });

  async function respond(
    record: FakeLlmRequest,
    res: ServerResponse,
    refusal: WireResponse | undefined,
  ) {
    let reply: FakeReply;
    if (refusal) {
      reply = { raw: refusal };
    } else {
      try {
        reply = await handler(record);
      } catch (err) {
        // A bug in a test's handler: answer something loud rather than hang.
        reply = {
          raw: { status: 500, body: { error: { message: `fake handler threw: ${String(err)}` } } },
        };
      }
    }
    for (;;) {
      if (record.aborted) return;
      if ('hang' in reply) return waitForClose(res);
      if ('reset' in reply) {
        res.socket?.destroy();
        return;
      }
      if ('delayMs' in reply) {
        await waitForClose(res, reply.delayMs);
        reply = reply.then;
        continue;
      }
      break;
    }
    const out =
      'raw' in reply
        ? { status: reply.raw.status ?? 200, body: reply.raw.body, headers: reply.raw.headers }
        : 'error' in reply
          ? wire.renderError(reply.error, record)
          : wire.renderAnswer(reply, record, nextId);
    record.status = out.status;
    res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
    res.end(JSON.stringify(out.body));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${wire.basePath}`,
    requests,
    setHandler(next) {
      handler = next;
    },
    reset() {
      requests.length = 0;
      handler = scriptedModel();
    },
    requestCount(promptSubstring) {
      return requests.filter(
        (r) => promptSubstring === undefined || r.prompt.includes(promptSubstring),
      ).length;
    },
    waitFor(predicate, timeoutMs = 5000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(requests)) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`fake ${wire.format} server: condition not met within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          watchers.delete(check);
        };
        watchers.add(check);
        check();
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hung requests and keep-alive sockets would hold close() open.
        server.closeAllConnections();
      });
    },
  };
}

/** Resolves when the response closes (client gone, or fake closing), or after `ms`. */
function waitForClose(res: ServerResponse, ms?: number): Promise<void> {
  return new Promise((resolve) => {
    if (res.closed) return resolve();
    const timer = ms === undefined ? undefined : setTimeout(finish, ms);
    res.once('close', finish);
    function finish() {
      clearTimeout(timer);
      res.off('close', finish);
      resolve();
    }
  });
}

/** Approximate tokens as a real tokenizer would roughly count them: ~4 characters each. */
export function approximateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Parses a string as JSON when it is JSON, else returns it as is. */
export function parseMaybeJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}
