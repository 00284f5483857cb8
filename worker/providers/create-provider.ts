/**
 * Builds the provider a task names, from the worker's settings. The one place
 * that knows which settings each provider takes.
 */
import type { ProviderName } from '../../shared/catalog.ts';
import { createGoogleProvider } from './google.ts';
import { createOfflineProvider } from './offline.ts';
import { createOpenAIProvider } from './openai.ts';
import type { Provider } from './provider.ts';

export interface ProviderSettings {
  openaiApiKey?: string | undefined;
  openaiBaseUrl?: string | undefined;
  googleApiKey?: string | undefined;
  googleBaseUrl?: string | undefined;
  /** Per-request timeout for network providers. Default 120,000 ms. */
  requestTimeoutMs?: number | undefined;
}

/**
 * A provider without credentials is still returned: its `complete` rejects
 * with `provider_not_configured`, so only the tasks that name it fail.
 */
export function createProvider(name: ProviderName, settings: ProviderSettings = {}): Provider {
  switch (name) {
    case 'openai':
      return createOpenAIProvider({
        apiKey: settings.openaiApiKey,
        baseURL: settings.openaiBaseUrl,
        requestTimeoutMs: settings.requestTimeoutMs,
      });
    case 'google':
      return createGoogleProvider({
        apiKey: settings.googleApiKey,
        baseUrl: settings.googleBaseUrl,
        requestTimeoutMs: settings.requestTimeoutMs,
      });
    case 'offline':
      return createOfflineProvider();
  }
}
