/**
 * AGENTQ_ALLOWED_MODELS: which models each provider may be asked for.
 * Syntax: `provider=model,model;provider=model`, e.g.
 * `openai=gpt-4o-mini,gpt-4o;google=gemini-2.0-flash;offline=offline-demo`
 * (`=` because model names may contain `:`). When set, only the listed pairs
 * are accepted: a provider that is not listed accepts no model at all.
 * Unset, any well-formed model name is accepted.
 */
import { PROVIDER_NAMES, type ProviderName } from './catalog.ts';
import { modelNameProblem } from './model-name.ts';

export type AllowedModels = Partial<Record<ProviderName, readonly string[]>>;

/** Parses the variable's value; throws an Error whose message says what is wrong. */
export function parseAllowedModels(text: string): AllowedModels {
  const out: AllowedModels = {};
  for (const entry of text.split(';').map((e) => e.trim())) {
    if (entry === '') continue;
    const eq = entry.indexOf('=');
    const provider = entry.slice(0, eq).trim();
    if (eq < 0 || !(PROVIDER_NAMES as readonly string[]).includes(provider)) {
      throw new Error(
        `"${entry}" must be provider=model[,model…] with a provider among ${PROVIDER_NAMES.join(', ')}`,
      );
    }
    const name = provider as ProviderName;
    if (out[name]) throw new Error(`provider ${name} is listed twice`);
    const models = entry
      .slice(eq + 1)
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    if (models.length === 0) throw new Error(`provider ${name} lists no model`);
    for (const model of models) {
      const problem = modelNameProblem(model, name);
      if (problem) throw new Error(`${name} model "${model}" ${problem}`);
    }
    out[name] = models;
  }
  if (Object.keys(out).length === 0) throw new Error('lists no provider=model entry');
  return out;
}

export function isModelAllowed(
  allowed: AllowedModels | undefined,
  provider: ProviderName,
  model: string,
): boolean {
  return allowed === undefined || (allowed[provider]?.includes(model) ?? false);
}
