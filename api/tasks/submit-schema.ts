/**
 * The submit body, strict at every level: an unknown field is a 400 naming it,
 * never silently dropped (the system agentq replaces dropped them).
 */
import * as v from 'valibot';
import { AgentConfigInput } from '../../shared/tasks/agent-config.ts';

const int = (min: number, max: number) =>
  v.pipe(
    v.number(),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

export const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

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
      v.transform((s) => new Date(s)),
      v.check((d) => !Number.isNaN(d.getTime()), 'is not a real date'),
    ),
  ),
  max_attempts: v.optional(int(1, 20), 3),
  timeout_s: v.optional(int(1, 3600), 300),
  metadata: v.optional(
    v.pipe(
      v.custom<Record<string, unknown>>(isPlainObject, 'must be a JSON object'),
      v.check(
        (m) => JSON.stringify(m).length <= MAX_METADATA_BYTES,
        `must be at most ${MAX_METADATA_BYTES} bytes as JSON`,
      ),
    ),
    {},
  ),
  idempotency_key: v.optional(
    v.pipe(v.string(), v.minLength(1, 'must not be empty'), v.maxLength(200, 'must be at most 200 characters')),
  ),
});
export type SubmitBody = v.InferOutput<typeof SubmitBody>;
