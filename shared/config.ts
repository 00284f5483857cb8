/**
 * The environment, parsed once at start with valibot. Only `main.ts` files call
 * `loadConfig(process.env)`; everything else receives the typed `Config`.
 * A bad value throws `ConfigError` with one line naming the variable.
 */
import * as v from 'valibot';
import { DEFAULT_MODELS, PROVIDER_NAMES, type ProviderName } from './catalog.ts';
import { isModelAllowed, parseAllowedModels, type AllowedModels } from './allowed-models.ts';
import { isLoopbackHost } from './loopback.ts';
import { modelNameProblem } from './model-name.ts';
import { parseWebhookSecrets } from './webhooks/webhook-secret.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const optionalText = v.optional(v.pipe(v.string(), v.trim()));

function integer(min: number, max: number, fallback: number) {
  return v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, `must be a whole number from ${min} to ${max}`),
      v.transform(Number),
      v.minValue(min, `must be at least ${min}`),
      v.maxValue(max, `must be at most ${max}`),
    ),
    String(fallback),
  );
}

const urlText = v.optional(v.pipe(v.string(), v.trim(), v.url('must be a URL')));

const list = v.pipe(
  v.optional(v.string(), ''),
  v.transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  ),
);

const EnvSchema = v.object({
  DATABASE_URL: v.optional(
    v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\//, 'must start with postgres://')),
  ),
  AGENTQ_DIRECT_DATABASE_URL: v.optional(
    v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\//, 'must start with postgres://')),
  ),
  AGENTQ_READ_DATABASE_URL: v.optional(
    v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\//, 'must start with postgres://')),
  ),
  PORT: integer(0, 65535, 8080),
  HOST: optionalText,
  AGENTQ_API_TOKENS: list,
  AGENTQ_API_READ_TOKENS: list,
  AGENTQ_WORKER_CONCURRENCY: integer(1, 1000, 10),
  AGENTQ_DEFAULT_PROVIDER: v.optional(
    v.picklist(PROVIDER_NAMES, `must be one of ${PROVIDER_NAMES.join(', ')}`),
  ),
  AGENTQ_DEFAULT_MODEL: optionalText,
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: urlText,
  GOOGLE_API_KEY: optionalText,
  GEMINI_API_KEY: optionalText,
  GOOGLE_BASE_URL: urlText,
  AGENTQ_HTTP_ALLOWLIST: list,
  LOG_LEVEL: v.optional(v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`), 'info'),
  AGENTQ_BODY_LIMIT_BYTES: integer(1024, 100 * 1024 * 1024, 1024 * 1024),
  AGENTQ_BATCH_BODY_LIMIT_BYTES: integer(1024, 256 * 1024 * 1024, 16 * 1024 * 1024),
  AGENTQ_POLL_INTERVAL_MS: integer(50, 60_000, 1000),
  AGENTQ_HEARTBEAT_MS: integer(100, 600_000, 2000),
  AGENTQ_WORKER_DEAD_AFTER_MS: integer(500, 3_600_000, 10_000),
  AGENTQ_SHUTDOWN_GRACE_MS: integer(0, 3_600_000, 10_000),
  AGENTQ_RETRY_BASE_MS: integer(0, 3_600_000, 2000),
  AGENTQ_RETRY_MAX_MS: integer(0, 86_400_000, 300_000),
  AGENTQ_PROVIDER_TIMEOUT_MS: integer(100, 3_600_000, 120_000),
  AGENTQ_DB_POOL_MAX: integer(2, 1000, 10),
  AGENTQ_READ_POOL_MAX: integer(1, 1000, 5),
  AGENTQ_RECOVERY_POOL_MAX: integer(1, 100, 2),
  AGENTQ_ALLOWED_MODELS: optionalText,
  AGENTQ_MAX_STREAMS: integer(1, 1_000_000, 1000),
  AGENTQ_STREAM_MAX_S: integer(1, 86_400, 300),
  AGENTQ_MAX_PARALLEL_TOOLS: integer(1, 1000, 16),
  AGENTQ_WEBHOOK_SECRET: optionalText,
  AGENTQ_RETENTION_DAYS: integer(0, 36_500, 30),
  AGENTQ_WEBHOOK_ALLOW_PRIVATE: v.optional(
    v.picklist(['true', 'false'], 'must be true or false'),
    'false',
  ),
  AGENTQ_WEBHOOK_MAX_ATTEMPTS: integer(1, 100, 12),
  AGENTQ_WEBHOOK_RETRY_BASE_MS: integer(0, 3_600_000, 5000),
  AGENTQ_WEBHOOK_RETRY_MAX_MS: integer(0, 86_400_000, 3_600_000),
  AGENTQ_WEBHOOK_TIMEOUT_MS: integer(100, 300_000, 10_000),
  AGENTQ_METRICS_PORT: v.optional(
    v.pipe(
      v.string(),
      v.trim(),
      v.regex(/^\d+$/, 'must be a port number from 0 to 65535'),
      v.transform(Number),
      v.maxValue(65535, 'must be at most 65535'),
    ),
  ),
  AGENTQ_METRICS_PUBLIC: v.optional(
    v.picklist(['true', 'false'], 'must be true or false'),
    'false',
  ),
});

export interface Config {
  /** Postgres URL; `npm start` supplies an embedded one when unset. May lead to a transaction-mode pooler. */
  databaseUrl: string | undefined;
  /**
   * A URL with a session (no transaction-mode pooler in between), for LISTEN
   * and migrations (AGENTQ_DIRECT_DATABASE_URL). Default DATABASE_URL.
   */
  directDatabaseUrl: string | undefined;
  /**
   * Where the API's task list (GET /v1/tasks) reads from, e.g. a replica
   * (AGENTQ_READ_DATABASE_URL). Unset: the primary. Status reads never use it.
   */
  readDatabaseUrl: string | undefined;
  /** Connections of the API's read pool (when AGENTQ_READ_DATABASE_URL is set). Default 5. */
  readPoolMax: number;
  /** Connections of a worker's recovery checks (dead workers, orphans). Default 2. */
  recoveryPoolMax: number;
  /** API port. Default 8080. */
  port: number;
  /**
   * API bind address. Default 127.0.0.1, with or without tokens; set
   * HOST=0.0.0.0 (which requires tokens) to listen on every interface.
   */
  host: string;
  /** Bearer tokens for /v1; empty means the API is open and bound to loopback. */
  apiTokens: string[];
  /**
   * Read-only bearer tokens (AGENTQ_API_READ_TOKENS): every GET under /v1 (and
   * /metrics), every write a 403. Requires apiTokens. Default none.
   */
  apiReadTokens: string[];
  /** Tasks one worker process runs at once. Default 10. */
  workerConcurrency: number;
  /** Provider for tasks that name none. */
  defaultProvider: ProviderName;
  /** Why the default provider was picked (logged at start). */
  defaultProviderReason: string;
  /** Model for tasks that name none (applies to the default provider). */
  defaultModel: string | undefined;
  openaiApiKey: string | undefined;
  openaiBaseUrl: string | undefined;
  googleApiKey: string | undefined;
  googleBaseUrl: string | undefined;
  /** Hosts http_get may fetch; empty = the tool refuses every URL. */
  httpAllowlist: string[];
  logLevel: (typeof LOG_LEVELS)[number];
  /** Largest accepted request body. Default 1 MiB. */
  bodyLimitBytes: number;
  /** Largest accepted POST /v1/tasks/batch body (up to 1,000 tasks). Default 16 MiB. */
  batchBodyLimitBytes: number;
  /** How often idle workers look for due jobs (future run_at, retries). Default 1000 ms. */
  pollIntervalMs: number;
  /** Worker heartbeat period; also how often each worker looks for dead ones. Default 2000 ms. */
  heartbeatMs: number;
  /**
   * A worker silent this long is presumed dead and its tasks recovered. Default
   * 10 s: with a 2 s heartbeat, a killed worker's tasks are recovered within
   * about 12 s, and a false positive (a stalled but living worker) costs only a
   * retry, since its writes are fenced.
   */
  workerDeadAfterMs: number;
  /** On SIGTERM, how long running tasks may take to finish before being requeued. Default 10 s. */
  shutdownGraceMs: number;
  /** First retry delay; doubles per attempt, with jitter. Default 2000 ms. */
  retryBaseMs: number;
  /** Longest retry delay. Default 300 s. */
  retryMaxMs: number;
  /** Timeout of one provider HTTP request. Default 120 s. */
  providerTimeoutMs: number;
  /**
   * Postgres connections one process's pool may open. Default 10. In a worker
   * graphile-worker shares it (and keeps one of it for its own LISTEN). Each
   * process also holds one LISTEN connection, and a worker its recovery pool
   * and one heartbeat connection (README "Connection budget").
   */
  dbPoolMax: number;
  /** Models each provider may be asked for (AGENTQ_ALLOWED_MODELS); undefined = any well-formed name. */
  allowedModels: AllowedModels | undefined;
  /** Open SSE streams plus waiting long-polls one API process holds; beyond it 429. Default 1000. */
  maxStreams: number;
  /** Longest life of one SSE stream, after which the client reconnects with Last-Event-ID. Default 300 s. */
  streamMaxS: number;
  /** Tool calls one model turn may run at once; extra calls get an error result. Default 16. */
  maxParallelTools: number;
  /**
   * Standard Webhooks secrets (`whsec_…`, AGENTQ_WEBHOOK_SECRET, space-separated);
   * deliveries are signed with the first. Empty = webhooks off: a submit with
   * webhook_url is a 400.
   */
  webhookSecrets: string[];
  /** Let webhook_url reach loopback, private and link-local addresses. Default false. */
  webhookAllowPrivate: boolean;
  /** Delivery attempts of one webhook, the first included. Default 12 (about 2.4 h with the delays below). */
  webhookMaxAttempts: number;
  /** Delay before the first webhook retry; doubles per attempt, with jitter. Default 5000 ms. */
  webhookRetryBaseMs: number;
  /** Longest delay between webhook attempts, a receiver's Retry-After included. Default 1 h. */
  webhookRetryMaxMs: number;
  /** Time one delivery attempt may take (connect, send, response headers). Default 10 s. */
  webhookTimeoutMs: number;
  /**
   * Port of the worker's own GET /metrics listener (on HOST); unset = none,
   * 0 = any free port.
   * The API serves /metrics on its own port either way.
   */
  metricsPort: number | undefined;
  /** true: /metrics answers without a bearer token even when AGENTQ_API_TOKENS is set. Default false. */
  metricsPublic: boolean;
  /**
   * Days finished tasks (and their events) are kept, counted from submit
   * (AGENTQ_RETENTION_DAYS, default 30); 0 keeps everything. See shared/db/partitions.ts.
   */
  retentionDays: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset: `FOO= npm start` should not be an error.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = v.safeParse(EnvSchema, cleaned);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const key = issue.path?.[0]?.key ?? 'environment';
    throw new ConfigError(`invalid ${String(key)}: ${issue.message}`);
  }
  const e = parsed.output;
  const googleApiKey = e.GOOGLE_API_KEY ?? e.GEMINI_API_KEY;
  const [defaultProvider, defaultProviderReason] = pickDefaultProvider(
    e.AGENTQ_DEFAULT_PROVIDER,
    e.OPENAI_API_KEY,
    e.OPENAI_BASE_URL,
    googleApiKey,
  );
  // Loopback unless asked otherwise, tokens or not: exposing the API is a choice (HOST=0.0.0.0).
  const host = e.HOST ?? '127.0.0.1';
  if (e.AGENTQ_API_TOKENS.length === 0 && !isLoopbackHost(host)) {
    throw new ConfigError(
      `invalid HOST: ${host} would expose an API without authentication; set AGENTQ_API_TOKENS`,
    );
  }
  checkTokens('AGENTQ_API_TOKENS', e.AGENTQ_API_TOKENS);
  checkTokens('AGENTQ_API_READ_TOKENS', e.AGENTQ_API_READ_TOKENS);
  if (e.AGENTQ_API_READ_TOKENS.length > 0 && e.AGENTQ_API_TOKENS.length === 0) {
    throw new ConfigError(
      'invalid AGENTQ_API_READ_TOKENS: read-only tokens need AGENTQ_API_TOKENS set too (without it the API is open and bound to loopback)',
    );
  }
  // npm start runs the API and a worker in one process: one port each.
  if (
    e.AGENTQ_METRICS_PORT !== undefined &&
    e.AGENTQ_METRICS_PORT !== 0 &&
    e.AGENTQ_METRICS_PORT === e.PORT
  ) {
    throw new ConfigError(
      `invalid AGENTQ_METRICS_PORT: ${e.AGENTQ_METRICS_PORT} is PORT too; the API serves /metrics there already`,
    );
  }
  const allowedModels = parseAllowedModelsOrThrow(e.AGENTQ_ALLOWED_MODELS);
  let webhookSecrets: string[];
  try {
    webhookSecrets = parseWebhookSecrets(e.AGENTQ_WEBHOOK_SECRET ?? '');
  } catch (err) {
    throw new ConfigError(`invalid AGENTQ_WEBHOOK_SECRET: ${(err as Error).message}`);
  }
  checkDefaultModel(defaultProvider, e.AGENTQ_DEFAULT_MODEL, allowedModels);
  return {
    databaseUrl: e.DATABASE_URL,
    directDatabaseUrl: e.AGENTQ_DIRECT_DATABASE_URL ?? e.DATABASE_URL,
    readDatabaseUrl: e.AGENTQ_READ_DATABASE_URL,
    readPoolMax: e.AGENTQ_READ_POOL_MAX,
    recoveryPoolMax: e.AGENTQ_RECOVERY_POOL_MAX,
    port: e.PORT,
    host,
    apiTokens: e.AGENTQ_API_TOKENS,
    apiReadTokens: e.AGENTQ_API_READ_TOKENS,
    workerConcurrency: e.AGENTQ_WORKER_CONCURRENCY,
    defaultProvider,
    defaultProviderReason,
    defaultModel: e.AGENTQ_DEFAULT_MODEL,
    openaiApiKey: e.OPENAI_API_KEY,
    openaiBaseUrl: e.OPENAI_BASE_URL,
    googleApiKey,
    googleBaseUrl: e.GOOGLE_BASE_URL,
    httpAllowlist: e.AGENTQ_HTTP_ALLOWLIST,
    logLevel: e.LOG_LEVEL,
    bodyLimitBytes: e.AGENTQ_BODY_LIMIT_BYTES,
    batchBodyLimitBytes: e.AGENTQ_BATCH_BODY_LIMIT_BYTES,
    pollIntervalMs: e.AGENTQ_POLL_INTERVAL_MS,
    heartbeatMs: e.AGENTQ_HEARTBEAT_MS,
    workerDeadAfterMs: e.AGENTQ_WORKER_DEAD_AFTER_MS,
    shutdownGraceMs: e.AGENTQ_SHUTDOWN_GRACE_MS,
    retryBaseMs: e.AGENTQ_RETRY_BASE_MS,
    retryMaxMs: e.AGENTQ_RETRY_MAX_MS,
    providerTimeoutMs: e.AGENTQ_PROVIDER_TIMEOUT_MS,
    dbPoolMax: e.AGENTQ_DB_POOL_MAX,
    allowedModels,
    maxStreams: e.AGENTQ_MAX_STREAMS,
    streamMaxS: e.AGENTQ_STREAM_MAX_S,
    maxParallelTools: e.AGENTQ_MAX_PARALLEL_TOOLS,
    webhookSecrets,
    webhookAllowPrivate: e.AGENTQ_WEBHOOK_ALLOW_PRIVATE === 'true',
    webhookMaxAttempts: e.AGENTQ_WEBHOOK_MAX_ATTEMPTS,
    webhookRetryBaseMs: e.AGENTQ_WEBHOOK_RETRY_BASE_MS,
    webhookRetryMaxMs: e.AGENTQ_WEBHOOK_RETRY_MAX_MS,
    webhookTimeoutMs: e.AGENTQ_WEBHOOK_TIMEOUT_MS,
    metricsPort: e.AGENTQ_METRICS_PORT,
    metricsPublic: e.AGENTQ_METRICS_PUBLIC === 'true',
    retentionDays: e.AGENTQ_RETENTION_DAYS,
  };
}

/** Each token of `variable` must be a real secret: no placeholder, at least 8 characters. */
function checkTokens(variable: string, tokens: readonly string[]): void {
  const placeholder = tokens.find(isPlaceholderToken);
  if (placeholder !== undefined) {
    throw new ConfigError(
      `invalid ${variable}: "${placeholder}" is a placeholder, not a secret; set a random token (e.g. openssl rand -hex 32)`,
    );
  }
  if (tokens.some((t) => t.length < 8)) {
    throw new ConfigError(`invalid ${variable}: each token must be at least 8 characters`);
  }
}

function parseAllowedModelsOrThrow(text: string | undefined): AllowedModels | undefined {
  if (text === undefined) return undefined;
  try {
    return parseAllowedModels(text);
  } catch (err) {
    throw new ConfigError(`invalid AGENTQ_ALLOWED_MODELS: ${(err as Error).message}`);
  }
}

/** The default model obeys the same rules as a submitted one, so no task fails on it later. */
function checkDefaultModel(
  provider: ProviderName,
  model: string | undefined,
  allowed: AllowedModels | undefined,
): void {
  const problem = model === undefined ? undefined : modelNameProblem(model, provider);
  if (problem) throw new ConfigError(`invalid AGENTQ_DEFAULT_MODEL: ${problem}`);
  const effective = model ?? DEFAULT_MODELS[provider];
  if (!isModelAllowed(allowed, provider, effective)) {
    throw new ConfigError(
      `invalid ${model === undefined ? 'AGENTQ_ALLOWED_MODELS' : 'AGENTQ_DEFAULT_MODEL'}: ` +
        `the default model ${effective} of provider ${provider} is not in AGENTQ_ALLOWED_MODELS`,
    );
  }
}

function pickDefaultProvider(
  explicit: ProviderName | undefined,
  openaiKey: string | undefined,
  openaiBaseUrl: string | undefined,
  googleKey: string | undefined,
): [ProviderName, string] {
  if (explicit) return [explicit, 'AGENTQ_DEFAULT_PROVIDER'];
  if (openaiKey) return ['openai', 'OPENAI_API_KEY is set'];
  // A local OpenAI-compatible server (Ollama, vLLM) needs no key.
  if (openaiBaseUrl) return ['openai', 'OPENAI_BASE_URL is set'];
  if (googleKey) return ['google', 'GOOGLE_API_KEY is set'];
  return ['offline', 'no provider key is set: tasks use the offline demo provider'];
}

/**
 * Tokens copied from examples and templates (compared ignoring case and
 * punctuation, so `Change_Me` counts too), and one character repeated: a
 * deployment that keeps one is open to anyone who read the same example.
 */
const PLACEHOLDER_TOKENS = new Set([
  'changemeplease',
  'changeme',
  'changethis',
  'replaceme',
  'secret',
  'secrettoken',
  'mysecret',
  'token',
  'mytoken',
  'apitoken',
  'yourtoken',
  'yourtokenhere',
  'yourapitoken',
  'password',
  'passw0rd',
  'letmein',
  'example',
  'test',
  'testtoken',
  'admin',
  'default',
  'qwerty',
  'qwertyui',
  '12345678',
  '123456789',
  '1234567890',
]);

export function isPlaceholderToken(token: string): boolean {
  const folded = token.toLowerCase().replace(/[^a-z0-9]/g, '');
  return PLACEHOLDER_TOKENS.has(folded) || /^(.)\1*$/.test(token);
}

/** The database URL, or a ConfigError naming DATABASE_URL (api and worker need one). */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError(
      'invalid DATABASE_URL: not set (npm start provides an embedded Postgres)',
    );
  }
  return config.databaseUrl;
}
