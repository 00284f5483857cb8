/**
 * The CLI's HTTP client for the agentq API: every request carries the token,
 * an unreachable API becomes a connection error naming the URL, and an error
 * answer becomes the API's own code and message (a 401 says to set AGENTQ_TOKEN).
 */
import type { TaskStatus } from '../shared/db/schema.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** A task as the API shows it (the fields the CLI reads). */
export interface Task {
  id: string;
  type: string;
  status: TaskStatus;
  input: { prompt: string };
  config: { provider?: string; model?: string; tools?: string[]; max_steps?: number };
  result: { answer: string } | null;
  error: { code: string; message: string; retryable?: boolean } | null;
  usage: { input_tokens: number; output_tokens: number; llm_calls: number; tool_calls: number };
  attempts: number;
  max_attempts: number;
  priority: number;
  metadata: Record<string, unknown>;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  cancel_requested_at: string | null;
}

/** One step-log event. */
export interface TaskEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
  created_at: string;
}

export interface TaskPage {
  data: Task[];
  next_cursor: string | null;
}

export interface ClientOptions {
  /** The API's base URL, without a trailing slash. */
  url: string;
  token?: string | undefined;
}

export type ApiClient = ReturnType<typeof createApiClient>;

export function createApiClient({ url, token }: ClientOptions) {
  async function request(
    method: string,
    path: string,
    init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (token) headers.authorization = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, {
        method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: init.signal,
      });
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw connectionError(url, err);
    }
    if (!res.ok) throw await apiError(url, res, token !== undefined && token !== '');
    return res;
  }

  async function json<T>(res: Response): Promise<T> {
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw notTheApi(url, res);
    }
  }

  return {
    url,
    async submit(body: Record<string, unknown>): Promise<{ task: Task; replayed: boolean }> {
      const res = await request('POST', '/v1/tasks', { body });
      return {
        task: await json<Task>(res),
        replayed: res.headers.get('idempotent-replayed') === 'true',
      };
    },
    /** Reads a task; with `waitS`, the API holds the request until it is finished or that many seconds pass. */
    async get(id: string, waitS?: number, signal?: AbortSignal): Promise<Task> {
      const query = waitS === undefined ? '' : `?wait=${waitS}`;
      return json<Task>(
        await request('GET', `/v1/tasks/${encodeURIComponent(id)}${query}`, { signal }),
      );
    },
    async list(query: Record<string, string | undefined>): Promise<TaskPage> {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
      const qs = params.size > 0 ? `?${params}` : '';
      return json<TaskPage>(await request('GET', `/v1/tasks${qs}`));
    },
    /** Returns the task and whether the cancellation is still pending (202: a running task). */
    async cancel(id: string): Promise<{ task: Task; pending: boolean }> {
      const res = await request('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
      return { task: await json<Task>(res), pending: res.status === 202 };
    },
    async eventsPage(
      id: string,
      after: number,
    ): Promise<{ data: TaskEvent[]; next_after: number }> {
      return json(
        await request(
          'GET',
          `/v1/tasks/${encodeURIComponent(id)}/events?after=${after}&limit=1000`,
        ),
      );
    },
    /** Opens the SSE stream of the step log after `lastSeq` (sent as Last-Event-ID). */
    async openEventStream(id: string, lastSeq: number, signal?: AbortSignal): Promise<Response> {
      return request('GET', `/v1/tasks/${encodeURIComponent(id)}/events`, {
        headers: { accept: 'text/event-stream', 'last-event-id': String(lastSeq) },
        signal,
      });
    },
  };
}

/** True for an error that a retry may get past (the connection, a busy or restarting API). */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof CliError &&
    (err.exitCode === EXIT.connection ||
      (err instanceof ApiAnswerError && [429, 502, 503, 504].includes(err.status)))
  );
}

/** An error answer from the API. */
export class ApiAnswerError extends CliError {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message, EXIT.api);
  }
}

export function connectionError(url: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  return new CliError(
    `cannot reach the agentq API at ${url} (${why}).\n` +
      'Start it (npm start in the agentq checkout), or set AGENTQ_URL (or --url) to where it runs.',
    EXIT.connection,
  );
}

function notTheApi(url: string, res: Response): CliError {
  const type = res.headers.get('content-type') ?? 'no content type';
  return new ApiAnswerError(
    `the server at ${url} answered HTTP ${res.status} (${type}), not the agentq API's JSON; ` +
      'is AGENTQ_URL (or --url) right?',
    res.status,
    undefined,
  );
}

interface ErrorBody {
  error?: { code?: string; message?: string; details?: { issues?: Array<{ message?: string }> } };
}

async function apiError(url: string, res: Response, hadToken: boolean): Promise<CliError> {
  const text = await res.text().catch(() => '');
  let body: ErrorBody;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    return notTheApi(url, res);
  }
  const { code, message = res.statusText } = body.error ?? {};
  if (code === undefined) return notTheApi(url, res);
  if (res.status === 401) {
    return new ApiAnswerError(
      hadToken
        ? `the API at ${url} refused the token (401 ${code}): set AGENTQ_TOKEN (or --token) to one of its AGENTQ_API_TOKENS.`
        : `the API at ${url} needs a token (401 ${code}): set AGENTQ_TOKEN (or --token) to one of its AGENTQ_API_TOKENS.`,
      res.status,
      code,
    );
  }
  const issues = (body.error?.details?.issues ?? [])
    .map((i) => i.message)
    .filter((m): m is string => typeof m === 'string' && m !== message);
  const more = issues.map((m) => `\n  ${m}`).join('');
  return new ApiAnswerError(`${code}: ${message} (HTTP ${res.status})${more}`, res.status, code);
}
