/**
 * Every tool the worker offers, by the names in shared/catalog.ts, and the
 * three things the agent loop does with them: describe one to a model
 * (`toolDefinition`), check a model's arguments (`validateToolArguments`) and
 * run one so that every failure becomes a message for the model (`runTool`).
 */
import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import type { ToolName } from '../../shared/catalog.ts';
import type { JsonSchema, ToolDefinition } from '../providers/provider.ts';
import { calculatorTool } from './calculator.ts';
import { currentTimeTool } from './current-time.ts';
import { httpGetTool } from './http-get.ts';
import { ToolError, type Tool, type ToolContext } from './tool.ts';

export const TOOLS: Record<ToolName, Tool> = {
  calculator: calculatorTool,
  current_time: currentTimeTool,
  http_get: httpGetTool,
};

export type ToolOutcome = { ok: true; output: unknown } | { ok: false; error: string };

/**
 * The tool as a model sees it. `parameters` is a plain JSON Schema object
 * (`type`, `properties`, `required`, `additionalProperties: false`, no
 * `$schema`), the shape OpenAI-compatible servers accept; the Gemini provider
 * converts it to Gemini's schema subset itself (worker/providers/google.ts).
 */
export function toolDefinition(tool: Tool): ToolDefinition {
  const { $schema: _ignored, ...schema } = toJsonSchema(tool.schema, {
    errorMode: 'throw',
  }) as JsonSchema;
  if (schema.type !== 'object' || typeof schema.properties !== 'object') {
    throw new Error(`tool ${tool.name}: its schema must be an object schema`);
  }
  return {
    name: tool.name,
    description: tool.description,
    parameters: { ...schema, required: schema.required ?? [], additionalProperties: false },
  };
}

/** Checks arguments against the tool's schema; the message names each bad field. */
export function validateToolArguments(
  tool: Tool,
  args: unknown,
): { ok: true; value: unknown } | { ok: false; message: string } {
  // A call to a tool without parameters sometimes arrives with no arguments at all.
  const result = v.safeParse(tool.schema, args ?? {});
  if (result.success) return { ok: true, value: result.output };
  const fields = 'entries' in tool.schema ? Object.keys(tool.schema.entries as object) : [];
  const problems = result.issues.map((issue) => {
    const path = issue.path?.map((item) => String(item.key)).join('.');
    if (!path) return `the arguments must be a JSON object, not ${issue.received}`;
    if (issue.received === 'undefined') return `${path}: is required`;
    if (issue.type === 'strict_object') {
      return `unknown field "${path}" (the fields are: ${fields.join(', ') || 'none'})`;
    }
    return `${path}: ${issue.message}`;
  });
  return { ok: false, message: problems.join('; ') };
}

/**
 * Runs a tool by name. Never throws for the model's mistakes or the tool's
 * failures — those come back as `{ ok: false, error }` for the model to read.
 * The one exception is an abort of `context.signal`: its reason is rethrown so
 * the caller stops the task instead of feeding a result to the model.
 */
export async function runTool(
  name: string,
  args: unknown,
  context: ToolContext,
  tools: Readonly<Record<string, Tool>> = TOOLS,
): Promise<ToolOutcome> {
  context.signal.throwIfAborted();
  // hasOwn, so a model asking for "constructor" or "__proto__" gets "unknown tool".
  const tool = Object.hasOwn(tools, name) ? tools[name] : undefined;
  if (!tool) {
    return {
      ok: false,
      error: `unknown tool "${name}"; available tools: ${Object.keys(tools).join(', ')}`,
    };
  }
  const validated = validateToolArguments(tool, args);
  if (!validated.ok)
    return { ok: false, error: `invalid arguments for ${name}: ${validated.message}` };
  try {
    return { ok: true, output: await tool.run(validated.value, context) };
  } catch (error) {
    if (context.signal.aborted) throw context.signal.reason;
    if (error instanceof ToolError) return { ok: false, error: error.message };
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, error: `the tool ${name} failed unexpectedly: ${message}` };
  }
}
