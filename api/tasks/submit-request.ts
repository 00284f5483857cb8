/**
 * One submit body, validated and turned into the row to insert: shared by
 * POST /v1/tasks and each item of POST /v1/tasks/batch, so an item is checked,
 * resolved and hashed exactly as a single submit is (a key used in one and
 * replayed in the other is still a replay).
 */
import { createHash } from 'node:crypto';
import * as v from 'valibot';
import { uuidv7 } from 'uuidv7';
import type { Config } from '../../shared/config.ts';
import { resolveAgentConfig } from '../../shared/tasks/agent-config.ts';
import type { NewTask } from '../../shared/tasks/task-queries.ts';
import { checkWebhookUrl } from '../../shared/webhooks/webhook-url.ts';
import { ApiError } from '../errors.ts';
import { assertStorableJson, describeIssues, type IssueDetail } from '../validation.ts';
import { assertModelAccepted, isPlainObject, SubmitBody } from './submit-schema.ts';

/** Canonical JSON (sorted keys) so a replayed body hashes the same whatever its key order. */
function canonical(value: unknown): string {
  // A Date (a parsed run_at) has no own keys: hash the instant, or every run_at hashes alike.
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Screens and parses one body. `at` names it in messages: '' for a single
 * submit (fields read `config.model`), `tasks[3]` for a batch item
 * (`tasks[3].config.model`). Returns the body or the issues found.
 */
export function parseSubmitBody(
  raw: unknown,
  at = '',
): { body: SubmitBody; issues?: undefined } | { issues: IssueDetail[] } {
  if (!isPlainObject(raw)) {
    throw new ApiError(400, 'invalid_request', `${at || 'body'}: must be a JSON object`);
  }
  assertStorableJson(raw, at || 'body');
  const result = v.safeParse(SubmitBody, raw);
  if (result.success) return { body: result.output };
  return { issues: describeIssues(result.issues, at) };
}

/** The idempotency key: the body's, or the header's (single submit only); they must agree. */
export function idempotencyKeyOf(body: SubmitBody, headerKey: string | undefined): string | null {
  if (
    headerKey !== undefined &&
    body.idempotency_key !== undefined &&
    headerKey !== body.idempotency_key
  ) {
    throw new ApiError(400, 'invalid_request', 'Idempotency-Key header and idempotency_key differ');
  }
  const key = body.idempotency_key ?? headerKey ?? null;
  if (key !== null && (key.length === 0 || key.length > 200)) {
    throw new ApiError(400, 'invalid_request', 'Idempotency-Key must be 1 to 200 characters');
  }
  return key;
}

/** The row to insert: config resolved against the server's defaults, request hashed for replays. */
export function newTaskFrom(
  body: SubmitBody,
  key: string | null,
  config: Config,
  at = '',
): NewTask {
  const { idempotency_key: _ignored, ...hashed } = body;
  const agentConfig = resolveAgentConfig(body.config, {
    provider: config.defaultProvider,
    model: config.defaultModel,
  });
  // The model as it will run (a default included) must be a safe name the operator allows.
  assertModelAccepted(agentConfig.provider, agentConfig.model, config.allowedModels, at);
  const webhookUrl =
    body.webhook_url === undefined ? null : acceptWebhookUrl(body.webhook_url, config, at);
  return {
    id: uuidv7(),
    type: body.type,
    input: { prompt: body.input.prompt },
    config: agentConfig,
    maxAttempts: body.max_attempts,
    priority: body.priority,
    timeoutMs: body.timeout_s * 1000,
    runAt: body.run_at ?? null,
    metadata: body.metadata,
    idempotencyKey: key,
    webhookUrl,
    requestHash: key === null ? null : createHash('sha256').update(canonical(hashed)).digest('hex'),
  };
}

/**
 * A webhook_url this server will deliver to, normalised; else a 400 naming the
 * field: webhooks need AGENTQ_WEBHOOK_SECRET (an unsigned delivery would be
 * worthless to a receiver, and a silently dropped one worse), and the host
 * must not be loopback, private or link-local unless AGENTQ_WEBHOOK_ALLOW_PRIVATE.
 */
function acceptWebhookUrl(text: string, config: Config, at: string): string {
  const field = at ? `${at}.webhook_url` : 'webhook_url';
  const checked = checkWebhookUrl(text, { allowPrivate: config.webhookAllowPrivate });
  const problem =
    config.webhookSecrets.length === 0
      ? 'webhooks are not configured on this server (AGENTQ_WEBHOOK_SECRET is not set)'
      : checked.problem;
  if (problem !== undefined || checked.problem !== undefined) {
    const message = `${field}: ${problem ?? checked.problem}`;
    throw new ApiError(400, 'invalid_request', message, { issues: [{ field, message }] });
  }
  return checked.url.href;
}
