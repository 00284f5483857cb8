/**
 * What a process says at start about what it will use: the default provider,
 * its model and base URL, and the database (password masked). `npm start`
 * prints it as a banner; `npm run api` / `npm run worker` log the same facts.
 */
import { DEFAULT_MODELS } from './catalog.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/** Where the SDKs send requests when no base URL is configured. */
const DEFAULT_BASE_URLS = {
  openai: 'https://api.openai.com/v1',
  google: 'https://generativelanguage.googleapis.com',
} as const;

export interface ProviderSummary {
  provider: Config['defaultProvider'];
  model: string;
  /** Undefined for the offline provider (no network). */
  baseUrl: string | undefined;
  /** Why this provider was picked. */
  reason: string;
  /** Set when the provider will refuse every task as configured. */
  problem: string | undefined;
}

export function providerSummary(config: Config): ProviderSummary {
  const provider = config.defaultProvider;
  let baseUrl: string | undefined;
  let problem: string | undefined;
  if (provider === 'openai') {
    baseUrl = config.openaiBaseUrl ?? DEFAULT_BASE_URLS.openai;
    if (!config.openaiApiKey && !config.openaiBaseUrl)
      problem = 'neither OPENAI_API_KEY nor OPENAI_BASE_URL is set';
  } else if (provider === 'google') {
    baseUrl = config.googleBaseUrl ?? DEFAULT_BASE_URLS.google;
    if (!config.googleApiKey) problem = 'GOOGLE_API_KEY is not set';
  }
  return {
    provider,
    model: config.defaultModel ?? DEFAULT_MODELS[provider],
    baseUrl: baseUrl === undefined ? undefined : maskUrlPassword(baseUrl),
    reason: config.defaultProviderReason,
    problem,
  };
}

/** The URL with its password (if any) replaced by `***`; other text unchanged. */
export function maskUrlPassword(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
  if (!parsed.password) return url;
  parsed.password = '***';
  return parsed.toString();
}

/** The start log line of every entry point: provider, model, base URL, database. */
export function logStartFacts(logger: Logger, config: Config, databaseUrl: string): void {
  const { problem, ...summary } = providerSummary(config);
  logger.info({ ...summary, database: maskUrlPassword(databaseUrl) }, 'starting');
  if (problem) logger.warn(`default provider ${summary.provider}: ${problem}`);
}

/** The text `npm start` prints once everything is up. */
export function startBanner(options: {
  config: Config;
  apiUrl: string;
  databaseUrl: string;
  /** Set when `npm start` runs its own Postgres with its data here. */
  embeddedDataDir?: string | undefined;
}): string {
  const { config, apiUrl } = options;
  const p = providerSummary(config);
  const providerLine =
    p.provider === 'offline'
      ? `  provider  offline demo (no LLM) — set OPENAI_API_KEY, OPENAI_BASE_URL or GOOGLE_API_KEY for a real model`
      : `  provider  ${p.provider}, model ${p.model}, at ${p.baseUrl ?? ''} (${p.reason})` +
        (p.problem ? `\n            warning: ${p.problem}, so tasks for it will fail` : '');
  const database =
    `  database  ${maskUrlPassword(options.databaseUrl)}` +
    (options.embeddedDataDir ? `  (embedded; data in ${options.embeddedDataDir})` : '');
  const auth = config.apiTokens.length ? ` -H 'Authorization: Bearer <token>'` : '';
  return [
    '',
    `agentq is running at ${apiUrl}`,
    providerLine,
    database,
    `  dashboard ${apiUrl}/   (API docs: ${apiUrl}/docs)`,
    '',
    'Try it:',
    `  curl -s -X POST ${apiUrl}/v1/tasks${auth} -H 'Content-Type: application/json' \\`,
    `       -d '{"input":{"prompt":"What is 17 * 23? Use the calculator."}}'`,
    `  curl -s "${apiUrl}/v1/tasks/<id>?wait=30"${auth}`,
    `  curl -s ${apiUrl}/v1/tasks/<id>/events${auth}`,
    `  npx agentq submit "What is 17 * 23?" --follow` +
      (config.apiTokens.length ? '   (with AGENTQ_TOKEN set)' : ''),
    '',
    'Logs are JSON lines; for readable ones: npm start | npx pino-pretty',
    'Ctrl-C stops it.',
    '',
  ].join('\n');
}
