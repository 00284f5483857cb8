/**
 * What a model name may look like. Providers put it into requests, and the
 * Gemini SDK into the URL path (`/v1beta/models/${model}:generateContent`),
 * so `../../internal/admin/reset?x=` would make the worker POST to any path on
 * the provider's host with the operator's key. A name is one segment of
 * letters, digits and `._:-` (starting with a letter or digit, at most 128
 * characters), optionally behind one `namespace/` segment of the same form for
 * OpenAI-compatible servers (`meta-llama/llama-3.1-8b-instruct`). So never
 * `..`, `/` first, a second `/`, `?`, `#`, `%`, `\`, whitespace or other
 * characters a URL would read. For google, whose name lands in the path, no
 * `:` at all and no namespace but `models/` or `tunedModels/`.
 */
import type { ProviderName } from './catalog.ts';

const SEGMENT = '[A-Za-z0-9][A-Za-z0-9._:-]{0,127}';
const MODEL_NAME = new RegExp(`^(?:${SEGMENT}/)?${SEGMENT}$`);
const GOOGLE_MODEL_NAME = /^(?:(?:models|tunedModels)\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const MODEL_NAME_RULE =
  'must be a model name: letters, digits, ".", "_", ":" and "-", at most one "namespace/" prefix, no ".."';

/** Why `model` is not an acceptable name (for `provider`, when given), or undefined if it is. */
export function modelNameProblem(model: string, provider?: ProviderName): string | undefined {
  if (!MODEL_NAME.test(model) || model.includes('..')) return MODEL_NAME_RULE;
  if (provider === 'google' && !GOOGLE_MODEL_NAME.test(model)) {
    return 'must be a Gemini model name (like gemini-2.0-flash): no ":", no namespace but "models/" or "tunedModels/"';
  }
  return undefined;
}
