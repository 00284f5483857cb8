/**
 * What a tool is: a name, a description for the model, one valibot schema that
 * is both the argument validator and (converted) the JSON Schema the model sees,
 * and a `run` function.
 *
 * A tool reports a problem the model should hear about (division by zero, a
 * refused URL) by throwing `ToolError`; the loop turns it into a tool result.
 */
import type * as v from 'valibot';

export interface ToolContext {
  /** Fires on cancellation, timeout or shutdown; long-running tools must honour it. */
  signal: AbortSignal;
  /** Hosts `http_get` may fetch from; empty means the tool is off. */
  httpAllowlist: readonly string[];
}

export interface Tool<TSchema extends v.GenericSchema = v.GenericSchema> {
  name: string;
  description: string;
  schema: TSchema;
  run(args: v.InferOutput<TSchema>, context: ToolContext): Promise<unknown>;
}

/** A failure to report back to the model as the tool's result, not a crash. */
export class ToolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

/** Helps TypeScript infer `args` from the schema when declaring a tool. */
export function defineTool<TSchema extends v.GenericSchema>(tool: Tool<TSchema>): Tool<TSchema> {
  return tool;
}
