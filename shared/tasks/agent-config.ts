/**
 * The agent part of a task: what a client may ask for (`AgentConfigInput`,
 * strict) and how it is resolved against the server's defaults into the
 * `AgentConfig` stored on the task and run by the worker.
 */
import * as v from 'valibot';
import { DEFAULT_MODELS, PROVIDER_NAMES, TOOL_NAMES, type ProviderName } from '../catalog.ts';
import type { AgentConfig } from '../db/schema.ts';
import { MODEL_NAME_RULE, modelNameProblem } from '../model-name.ts';

export const DEFAULT_MAX_STEPS = 8;
export const DEFAULT_TOOLS = ['calculator', 'current_time'] as const;
export const DEFAULT_SYSTEM_PROMPT =
  'You are a careful assistant. Use the tools you are given when they help, ' +
  'check their results, and answer concisely.';

const names = (list: readonly string[]) => list.join(', ');

export const AgentConfigInput = v.strictObject({
  provider: v.optional(v.picklist(PROVIDER_NAMES, `must be one of: ${names(PROVIDER_NAMES)}`)),
  model: v.optional(
    v.pipe(
      v.string(),
      v.minLength(1, 'must not be empty'),
      v.maxLength(200, 'is too long'),
      // The provider-specific rule and AGENTQ_ALLOWED_MODELS are checked once the provider is known.
      v.check((m) => modelNameProblem(m) === undefined, MODEL_NAME_RULE),
      v.description(`${MODEL_NAME_RULE}; AGENTQ_ALLOWED_MODELS may narrow it`),
    ),
  ),
  max_steps: v.optional(
    v.pipe(
      v.number(),
      v.integer('must be a whole number'),
      v.minValue(1, 'must be at least 1'),
      v.maxValue(100, 'must be at most 100'),
    ),
  ),
  temperature: v.optional(
    v.pipe(v.number(), v.minValue(0, 'must be at least 0'), v.maxValue(2, 'must be at most 2')),
  ),
  tools: v.optional(
    v.pipe(
      v.array(v.picklist(TOOL_NAMES, `must be one of: ${names(TOOL_NAMES)}`)),
      v.check((list) => new Set(list).size === list.length, 'must not repeat a tool'),
    ),
  ),
  system_prompt: v.optional(v.pipe(v.string(), v.maxLength(20_000, 'is longer than 20000'))),
});
export type AgentConfigInput = v.InferOutput<typeof AgentConfigInput>;

export interface AgentDefaults {
  provider: ProviderName;
  /** Applies to the default provider only; other providers use DEFAULT_MODELS. */
  model: string | undefined;
}

export function resolveAgentConfig(input: AgentConfigInput, defaults: AgentDefaults): AgentConfig {
  const provider = input.provider ?? defaults.provider;
  const model =
    input.model ??
    (provider === defaults.provider && defaults.model ? defaults.model : DEFAULT_MODELS[provider]);
  return {
    provider,
    model,
    max_steps: input.max_steps ?? DEFAULT_MAX_STEPS,
    // null = the provider's own default (some models accept no temperature at all)
    temperature: input.temperature ?? null,
    tools: input.tools ?? [...DEFAULT_TOOLS],
    system_prompt: input.system_prompt ?? DEFAULT_SYSTEM_PROMPT,
  };
}
