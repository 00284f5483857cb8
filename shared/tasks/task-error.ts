/**
 * The machine-readable outcome of a failed attempt. Every failure a task can
 * record carries one of these codes; `retryable` decides whether the task goes
 * back to `queued` (while attempts remain) or fails at once.
 */
export const TASK_ERROR_CODES = [
  // retryable
  'provider_unavailable', // 429 (not quota), 5xx, connection reset, provider-side timeout
  'timeout', // the attempt ran past the task's timeout_s
  'worker_lost', // the worker running it died or was shut down before finishing
  // not retryable
  'invalid_config', // the stored config cannot be run (e.g. a tool the worker does not know)
  'provider_not_configured', // the provider has no credentials on this worker
  'provider_auth', // 401/403, Gemini's API_KEY_INVALID
  'provider_rejected', // other 4xx: bad model name, bad request
  'provider_quota_exhausted', // 429 insufficient_quota / RESOURCE_EXHAUSTED quota failure
  'max_steps_exceeded', // the model kept calling tools past max_steps
  'cancelled', // cancellation was requested and honoured
  'internal_error', // a bug in agentq; logged with its stack
] as const;
export type TaskErrorCode = (typeof TASK_ERROR_CODES)[number];

export const RETRYABLE_CODES: ReadonlySet<TaskErrorCode> = new Set([
  'provider_unavailable',
  'timeout',
  'worker_lost',
]);

/** The JSON stored in `tasks.error`. */
export interface TaskError {
  code: TaskErrorCode;
  message: string;
  retryable: boolean;
}

/** The error of a task that ended because cancellation was requested. */
export const CANCELLED_ERROR: TaskError = {
  code: 'cancelled',
  message: 'cancelled by request',
  retryable: false,
};

/**
 * An error that knows its task error code. Providers, tools and the loop throw
 * it; the worker turns it into the task's `error` and decides retry or fail.
 */
export class TaskFailure extends Error {
  readonly code: TaskErrorCode;
  readonly retryable: boolean;
  /** A provider's Retry-After, in milliseconds, when it sent one. */
  readonly retryAfterMs: number | undefined;
  /** The upstream HTTP status, when there was one. */
  readonly status: number | undefined;

  constructor(
    code: TaskErrorCode,
    message: string,
    options: { retryAfterMs?: number; status?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'TaskFailure';
    this.code = code;
    this.retryable = RETRYABLE_CODES.has(code);
    this.retryAfterMs = options.retryAfterMs;
    this.status = options.status;
  }

  toJSON(): TaskError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}
