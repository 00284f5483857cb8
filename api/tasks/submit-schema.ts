/**
 * The submit body, strict at every level: an unknown field is a 400 naming it,
 * never silently dropped (the system agentq replaces dropped them).
 */
import * as v from 'valibot';
import { isModelAllowed, type AllowedModels } from '../../shared/allowed-models.ts';
import type { ProviderName } from '../../shared/catalog.ts';
import { modelNameProblem } from '../../shared/model-name.ts';
import { AgentConfigInput } from '../../shared/tasks/agent-config.ts';
import { MAX_WEBHOOK_URL_CHARS } from '../../shared/webhooks/webhook-url.ts';
import { ApiError } from '../errors.ts';

const int = (min: number, max: number) =>
  v.pipe(
    v.number(),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

export const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The instant a timestamp that v.isoTimestamp accepted names, or undefined when
 * its calendar date does not exist (2030-02-31, which Date rolls into March).
 * The string is rewritten to the one form Date reads strictly (`T`, `±HH:MM`):
 * other forms fall to V8's legacy parser, which refuses `+05` and reads
 * `0049-01-01 00:00:00Z` as the year 2049.
 */
export function parseTimestamp(s: string): Date | undefined {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(?:Z| ?([+-])(\d{2}):?(\d{2})?)$/.exec(
      s,
    );
  if (!m) return undefined;
  const [, year, month, day, time, fraction = '', sign, hours, minutes = '00'] =
    m as unknown as string[];
  const y = Number(year);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Number(month) - 1];
  if (days === undefined || Number(day) > days) return undefined;
  const zone = sign === undefined ? 'Z' : `${sign}${hours}:${minutes}`;
  const date = new Date(`${year}-${month}-${day}T${time}${fraction.slice(0, 4)}${zone}`);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

export const MAX_PROMPT_CHARS = 100_000;
export const MAX_METADATA_BYTES = 16 * 1024;

export const SubmitBody = v.strictObject({
  type: v.optional(v.literal('agent', 'must be "agent"'), 'agent'),
  input: v.strictObject({
    prompt: v.pipe(
      v.string(),
      v.trim(),
      v.minLength(1, 'must not be empty'),
      v.maxLength(MAX_PROMPT_CHARS, `must be at most ${MAX_PROMPT_CHARS} characters`),
    ),
  }),
  config: v.optional(AgentConfigInput, {}),
  priority: v.optional(int(-100, 100), 0),
  run_at: v.optional(
    v.pipe(
      v.string(),
      v.isoTimestamp('must be an ISO-8601 timestamp with a time zone, like 2026-01-01T00:00:00Z'),
      v.description('run no earlier than this (ISO-8601 with a time zone)'),
      v.check((s) => parseTimestamp(s) !== undefined, 'is not a real date'),
      v.transform((s) => parseTimestamp(s)!),
    ),
  ),
  max_attempts: v.optional(int(1, 20), 3),
  timeout_s: v.optional(int(1, 3600), 300),
  metadata: v.optional(
    v.pipe(
      v.custom<Record<string, unknown>>(isPlainObject, 'must be a JSON object'),
      // Documentation only (the OpenAPI document): JSON Schema cannot read the custom check.
      v.metadata({
        type: 'object',
        description: `any JSON object, at most ${MAX_METADATA_BYTES} bytes as JSON`,
      }),
      v.check(
        (m) => Buffer.byteLength(JSON.stringify(m), 'utf8') <= MAX_METADATA_BYTES,
        `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
      ),
    ),
    {},
  ),
  idempotency_key: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1, 'must not be empty'),
      v.maxLength(200, 'must be at most 200 characters'),
    ),
  ),
  // Where the terminal status is POSTed (Standard Webhooks). The address and
  // server checks, which depend on the config, are in newTaskFrom.
  webhook_url: v.optional(
    v.pipe(
      v.string(),
      v.maxLength(MAX_WEBHOOK_URL_CHARS, `must be at most ${MAX_WEBHOOK_URL_CHARS} characters`),
      v.url('must be an absolute http or https URL'),
    ),
  ),
});
export type SubmitBody = v.InferOutput<typeof SubmitBody>;

/**
 * The resolved model against its provider's name rule and AGENTQ_ALLOWED_MODELS
 * (the schema already refused names no provider accepts): a 400 naming config.model.
 */
export function assertModelAccepted(
  provider: ProviderName,
  model: string,
  allowed: AllowedModels | undefined,
  /** Where the body sits: '' for a single submit, `tasks[3]` for a batch item. */
  at = '',
): void {
  const field = at ? `${at}.config.model` : 'config.model';
  const problem = modelNameProblem(model, provider);
  const message = problem
    ? `${field}: ${problem}`
    : isModelAllowed(allowed, provider, model)
      ? undefined
      : `${field}: ${model} is not allowed for provider ${provider}` +
        ` (allowed: ${allowed?.[provider]?.join(', ') || 'none'})`;
  if (message) {
    throw new ApiError(400, 'invalid_request', message, {
      issues: [{ field, message }],
    });
  }
}
