/**
 * What a failed provider request means for the task: one table from HTTP
 * status to TaskFailure code, shared by every provider, plus the two
 * provider-specific refinements (Gemini's bad-key 400, quota exhaustion) and
 * the Retry-After parsing. `guardProviderCall` wraps each SDK call so that an
 * abort from the caller is passed through untouched and a per-request timeout
 * becomes a retryable failure.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import {
  GoogleGenerativeAIAbortError,
  GoogleGenerativeAIError,
  GoogleGenerativeAIFetchError,
  GoogleGenerativeAIRequestInputError,
} from '@google/generative-ai';
import { TaskFailure, type TaskErrorCode } from '../../shared/tasks/task-error.ts';
import { redactProviderText } from './redact.ts';

/** The status table. Anything not listed: 5xx → unavailable, other 4xx → rejected. */
const STATUS_CODES: ReadonlyMap<number, TaskErrorCode> = new Map([
  [400, 'provider_rejected'], // malformed request, bad parameter: sending it again will not help
  [401, 'provider_auth'], // missing or wrong API key
  [403, 'provider_auth'], // key without access to this model / project / region
  [404, 'provider_rejected'], // unknown model name
  [408, 'provider_unavailable'], // the server timed the request out
  [409, 'provider_unavailable'], // conflict / lock timeout upstream; the SDK itself retries it
  [422, 'provider_rejected'], // well-formed but unacceptable (OpenAI-compatible servers)
  [429, 'provider_unavailable'], // rate limited; quota exhaustion is refined per provider below
]);

/** The TaskFailure code for an HTTP status, before provider-specific refinements. */
export function codeForStatus(status: number): TaskErrorCode {
  const code = STATUS_CODES.get(status);
  if (code) return code;
  return status >= 500 ? 'provider_unavailable' : 'provider_rejected';
}

/**
 * Milliseconds to wait, from `retry-after-ms` (OpenAI's, fractional ms), else
 * `retry-after` (seconds, or an HTTP date). Undefined when absent or unparsable.
 */
export function retryAfterFromHeaders(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) {
    return Math.max(0, Math.round(Number(ms)));
  }
  const after = headers.get('retry-after')?.trim();
  if (!after) return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return Math.round(Number(after) * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Gemini's `RetryInfo.retryDelay` is a protobuf Duration in JSON: "12s", "0.5s". */
export function retryAfterFromDuration(duration: unknown): number | undefined {
  if (typeof duration !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)s$/.exec(duration.trim());
  return match ? Math.round(Number(match[1]) * 1000) : undefined;
}

/** An OpenAI SDK error (or anything thrown from inside an OpenAI call) as a TaskFailure. */
export function classifyOpenAIError(err: unknown): TaskFailure {
  if (err instanceof TaskFailure) return err;
  // Order matters: the timeout error is a connection error, both are APIErrors without status.
  if (err instanceof APIConnectionTimeoutError) {
    return new TaskFailure('provider_unavailable', 'openai: the request timed out', { cause: err });
  }
  if (err instanceof APIUserAbortError) {
    // Only reached when our own per-request timeout aborted (guardProviderCall
    // rethrows the caller's abort before classifying).
    return new TaskFailure(
      'provider_unavailable',
      'openai: the request was aborted before an answer',
      {
        cause: err,
      },
    );
  }
  if (err instanceof APIConnectionError) {
    return new TaskFailure(
      'provider_unavailable',
      `openai: connection failed: ${describeCause(err)}`,
      {
        cause: err,
      },
    );
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    let code = codeForStatus(status);
    // A 429 is a rate limit to wait out, unless the account has no credit left:
    // then waiting minutes will not help, so fail at once.
    if (
      status === 429 &&
      (err.code === 'insufficient_quota' || err.type === 'insufficient_quota')
    ) {
      code = 'provider_quota_exhausted';
    }
    return new TaskFailure(code, `openai: ${err.message}`, {
      status,
      retryAfterMs: retryAfterFromHeaders(err.headers),
      cause: err,
    });
  }
  return classifyOtherError('openai', err);
}

interface GoogleErrorDetail {
  '@type'?: string;
  reason?: string;
  retryDelay?: string;
  violations?: Array<{ quotaId?: string; quotaMetric?: string }>;
}

/** A `@google/generative-ai` error (or anything thrown inside a Gemini call) as a TaskFailure. */
export function classifyGoogleError(err: unknown): TaskFailure {
  if (err instanceof TaskFailure) return err;
  if (err instanceof GoogleGenerativeAIFetchError && typeof err.status === 'number') {
    const status = err.status;
    const details = (
      Array.isArray(err.errorDetails) ? err.errorDetails : []
    ) as GoogleErrorDetail[];
    let code = codeForStatus(status);
    // Gemini answers a wrong key with 400 INVALID_ARGUMENT, not 401.
    if (details.some((d) => d.reason === 'API_KEY_INVALID')) code = 'provider_auth';
    if (status === 429 && isGeminiQuotaExhausted(details, err.message))
      code = 'provider_quota_exhausted';
    const retryInfo = details.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'));
    return new TaskFailure(code, `google: ${stripSdkPrefix(err.message)}`, {
      status,
      retryAfterMs: retryAfterFromDuration(retryInfo?.retryDelay),
      cause: err,
    });
  }
  if (err instanceof GoogleGenerativeAIAbortError) {
    return new TaskFailure(
      'provider_unavailable',
      'google: the request was aborted before an answer',
      {
        cause: err,
      },
    );
  }
  if (err instanceof GoogleGenerativeAIRequestInputError) {
    // The SDK refused what we built: our bug, not the provider's.
    return new TaskFailure('internal_error', `google: ${stripSdkPrefix(err.message)}`, {
      cause: err,
    });
  }
  if (err instanceof GoogleGenerativeAIError && err.message.includes('Error fetching from')) {
    // The SDK wraps fetch's network errors (refused, reset, DNS) this way.
    return new TaskFailure(
      'provider_unavailable',
      `google: connection failed: ${describeCause(err)}`,
      {
        cause: err,
      },
    );
  }
  return classifyOtherError('google', err);
}

/**
 * Our rule for Gemini quota exhaustion (fail now) versus rate limiting (retry):
 * a 429 is exhausted quota when a `QuotaFailure` violation names a per-day
 * quota (`…PerDay…` in quotaId or quotaMetric: waiting minutes will not help),
 * or when the message says the limit is 0 (the key has no quota for this
 * model at all, e.g. a free-tier key on a paid-only model). Per-minute limits
 * stay retryable, with RetryInfo's delay.
 */
function isGeminiQuotaExhausted(details: GoogleErrorDetail[], message: string): boolean {
  const perDay = details
    .filter((d) => d['@type']?.endsWith('google.rpc.QuotaFailure'))
    .flatMap((d) => d.violations ?? [])
    .some((v) => /per ?day/i.test(`${v.quotaId ?? ''} ${v.quotaMetric ?? ''}`));
  return perDay || /\blimit:\s*0\b/.test(message);
}

/** Errors that reached us without an SDK class: body read failures and the like. */
function classifyOtherError(provider: string, err: unknown): TaskFailure {
  // A connection dropped while reading the body surfaces as TypeError
  // ("terminated"); a truncated or garbled body as SyntaxError from JSON.parse.
  if (err instanceof TypeError || err instanceof SyntaxError) {
    return new TaskFailure(
      'provider_unavailable',
      `${provider}: bad or incomplete response: ${err.message}`,
      {
        cause: err,
      },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new TaskFailure('internal_error', `${provider}: unexpected error: ${message}`, {
    cause: err,
  });
}

function describeCause(err: Error): string {
  const cause = err.cause as { code?: unknown; cause?: unknown } | undefined;
  const inner = cause?.cause as { code?: unknown } | undefined;
  const code =
    typeof cause?.code === 'string'
      ? cause.code
      : typeof inner?.code === 'string'
        ? inner.code
        : '';
  return code ? `${code} (${stripSdkPrefix(err.message)})` : stripSdkPrefix(err.message);
}

function stripSdkPrefix(message: string): string {
  return message.replace(/^\[GoogleGenerativeAI Error\]:\s*/, '');
}

/** Marks an abort that came from the per-request timeout, not from the caller. */
class RequestTimeout extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'RequestTimeout';
  }
}

/**
 * Runs one SDK call with a signal of its own that follows `signal` and fires
 * after `timeoutMs`. On failure:
 * - the caller's signal fired → rethrow its reason unclassified (the caller
 *   knows whether that was cancel, timeout or shutdown);
 * - our timeout fired → `provider_unavailable`;
 * - anything else → `classify(err)`, its message redacted (redact.ts): it
 *   reaches clients, while the provider's full text stays on its `cause`
 *   for the worker's log.
 *
 * A fresh signal per request also keeps the SDKs' abort listeners (which they
 * never remove) off the long-lived attempt signal, so a long run does not pile
 * up listeners on it.
 */
export async function guardProviderCall<T>(
  provider: string,
  options: {
    signal: AbortSignal;
    timeoutMs: number | undefined;
    /** Hosts to hide in the failure's message (the configured base URLs' hosts). */
    hosts?: readonly string[];
  },
  classify: (err: unknown) => TaskFailure,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { signal, timeoutMs } = options;
  signal.throwIfAborted();
  const controller = new AbortController();
  const follow = () => controller.abort(signal.reason);
  signal.addEventListener('abort', follow, { once: true });
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(new RequestTimeout(timeoutMs)), timeoutMs);
  try {
    return await call(controller.signal);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const reason: unknown = controller.signal.reason;
    if (controller.signal.aborted && reason instanceof RequestTimeout) {
      throw new TaskFailure('provider_unavailable', `${provider}: ${reason.message}`, {
        cause: err,
      });
    }
    throw redactFailure(classify(err), options.hosts ?? []);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', follow);
  }
}

/** The same failure with a message fit for clients; the original error stays its cause. */
function redactFailure(failure: TaskFailure, hosts: readonly string[]): TaskFailure {
  const message = redactProviderText(failure.message, { hosts });
  if (message === failure.message) return failure;
  return new TaskFailure(failure.code, message, {
    status: failure.status,
    retryAfterMs: failure.retryAfterMs,
    cause: failure.cause,
  });
}
