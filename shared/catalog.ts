/**
 * The names both the API (to validate a submitted config) and the worker (to
 * build providers and tools) agree on. The worker's registries are tested to
 * cover exactly these names.
 */
export const PROVIDER_NAMES = ['openai', 'google', 'offline'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export const TOOL_NAMES = ['calculator', 'current_time', 'http_get'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** Model used when a task names a provider but no model. */
export const DEFAULT_MODELS: Record<ProviderName, string> = {
  openai: 'gpt-4o-mini',
  google: 'gemini-2.0-flash',
  offline: 'offline-demo',
};
