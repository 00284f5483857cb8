// The registry: it covers exactly the catalog's tool names, its JSON Schemas
// suit OpenAI and Gemini, argument errors read well, and runTool never throws
// except to pass on an abort.
import fc from 'fast-check';
import * as v from 'valibot';
import { toGeminiSchema } from '../../worker/providers/google.ts';
import { describe, expect, it } from 'vitest';
import { TOOL_NAMES } from '../../shared/catalog.ts';
import {
  runTool,
  toolDefinition,
  TOOLS,
  validateToolArguments,
} from '../../worker/tools/registry.ts';
import { defineTool, ToolError, type ToolContext } from '../../worker/tools/tool.ts';

const context = (signal = new AbortController().signal): ToolContext => ({
  signal,
  httpAllowlist: [],
});

/** Every key used anywhere in a JSON Schema, nested ones included. */
function keywords(schema: unknown, into = new Set<string>()): Set<string> {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return into;
  for (const [key, value] of Object.entries(schema)) {
    into.add(key);
    if (key === 'properties') Object.values(value as object).forEach((sub) => keywords(sub, into));
    else if (key === 'items') keywords(value, into);
  }
  return into;
}

describe('TOOLS', () => {
  it('covers exactly the catalog names, each under its own name', () => {
    expect(Object.keys(TOOLS).sort()).toEqual([...TOOL_NAMES].sort());
    for (const [name, tool] of Object.entries(TOOLS)) expect(tool.name).toBe(name);
  });
});

describe('toolDefinition', () => {
  it.each(TOOL_NAMES)('describes %s with a plain object schema', (name) => {
    const definition = toolDefinition(TOOLS[name]);
    expect(definition.name).toBe(name);
    expect(definition.description.length).toBeGreaterThan(20);
    const { parameters } = definition;
    expect(parameters).not.toHaveProperty('$schema');
    expect(parameters.type).toBe('object');
    expect(parameters.additionalProperties).toBe(false);
    const properties = parameters.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(properties).length).toBeGreaterThan(0);
    expect(Array.isArray(parameters.required)).toBe(true);
    for (const field of parameters.required as string[]) expect(properties).toHaveProperty(field);
    for (const property of Object.values(properties)) {
      expect(typeof property.type).toBe('string');
      expect(typeof property.description).toBe('string');
    }
    expect(JSON.parse(JSON.stringify(parameters))).toEqual(parameters);
  });

  it('lists required fields', () => {
    expect(toolDefinition(TOOLS.calculator).parameters.required).toEqual(['expression']);
    expect(toolDefinition(TOOLS.http_get).parameters.required).toEqual(['url']);
    expect(toolDefinition(TOOLS.current_time).parameters.required).toEqual([]);
  });

  it('refuses a tool whose schema is not an object', () => {
    const bad = defineTool({
      name: 'bad',
      description: 'x',
      schema: v.string(),
      run: async () => null,
    });
    expect(() => toolDefinition(bad)).toThrow(/object schema/);
  });
});

describe('every tool as Gemini sees it', () => {
  it.each(TOOL_NAMES)('%s converts to a schema without keywords Gemini refuses', (name) => {
    const definition = toolDefinition(TOOLS[name]);
    expect(keywords(definition.parameters)).toContain('additionalProperties');
    const gemini = toGeminiSchema(definition.parameters);
    expect(keywords(gemini)).not.toContain('additionalProperties');
    expect(keywords(gemini)).not.toContain('$schema');
    expect(Object.keys(gemini.properties as object)).toEqual(
      Object.keys(definition.parameters.properties as object),
    );
  });
});

describe('validateToolArguments', () => {
  it.each([
    ['calculator', { expression: '1+1' }, { ok: true, value: { expression: '1+1' } }],
    ['current_time', undefined, { ok: true, value: {} }],
    ['current_time', null, { ok: true, value: {} }],
    ['current_time', { timezone: 'UTC' }, { ok: true, value: { timezone: 'UTC' } }],
  ])('accepts %s %j', (name, args, expected) => {
    expect(validateToolArguments(TOOLS[name as keyof typeof TOOLS], args)).toEqual(expected);
  });

  it.each([
    ['calculator', {}, 'expression: is required'],
    ['calculator', { expression: 5 }, 'expression: must be a string'],
    ['calculator', { expression: '' }, 'expression: must not be empty'],
    ['calculator', { expression: '1'.repeat(1001) }, 'expression: must be at most 1000 characters'],
    [
      'calculator',
      { expression: '1', extra: true },
      'unknown field "extra" (the fields are: expression)',
    ],
    ['calculator', 5, 'the arguments must be a JSON object, not 5'],
    ['calculator', '1+1', 'the arguments must be a JSON object, not "1+1"'],
    ['current_time', { timezone: 7 }, 'timezone: must be a string'],
    ['current_time', { tz: 'UTC' }, 'unknown field "tz" (the fields are: timezone)'],
    ['http_get', { url: ['http://a'] }, 'url: must be a string'],
    [
      'http_get',
      { uri: 'http://a' },
      'url: is required; unknown field "uri" (the fields are: url)',
    ],
  ])('explains %s %j', (name, args, message) => {
    expect(validateToolArguments(TOOLS[name as keyof typeof TOOLS], args)).toEqual({
      ok: false,
      message,
    });
  });
});

describe('runTool', () => {
  it('runs a tool', async () => {
    await expect(runTool('calculator', { expression: '6*7' }, context())).resolves.toEqual({
      ok: true,
      output: { expression: '6*7', result: 42 },
    });
  });

  it.each(['nope', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    'reports the unknown tool %j',
    async (name) => {
      await expect(runTool(name, {}, context())).resolves.toEqual({
        ok: false,
        error: `unknown tool "${name}"; available tools: calculator, current_time, http_get`,
      });
    },
  );

  it('reports invalid arguments', async () => {
    await expect(runTool('calculator', { expr: '1' }, context())).resolves.toEqual({
      ok: false,
      error:
        'invalid arguments for calculator: expression: is required; unknown field "expr" (the fields are: expression)',
    });
  });

  it('reports a ToolError as its message', async () => {
    await expect(runTool('calculator', { expression: '1/0' }, context())).resolves.toEqual({
      ok: false,
      error: 'division by zero at position 2',
    });
  });

  it('reports any other failure with a generic prefix', async () => {
    const schema = v.strictObject({});
    const tools = {
      crash: defineTool({
        name: 'crash',
        description: 'x',
        schema,
        run: async () => {
          throw new TypeError('boom');
        },
      }),
      weird: defineTool({
        name: 'weird',
        description: 'x',
        schema,
        run: async () => {
          throw 'a string';
        },
      }),
      tool: defineTool({
        name: 'tool',
        description: 'x',
        schema,
        run: async () => {
          throw new ToolError('told');
        },
      }),
    };
    await expect(runTool('crash', {}, context(), tools)).resolves.toEqual({
      ok: false,
      error: 'the tool crash failed unexpectedly: boom',
    });
    await expect(runTool('weird', {}, context(), tools)).resolves.toEqual({
      ok: false,
      error: 'the tool weird failed unexpectedly: a string',
    });
    await expect(runTool('tool', {}, context(), tools)).resolves.toEqual({
      ok: false,
      error: 'told',
    });
  });

  it('rethrows the abort reason, before or during a run', async () => {
    const before = new AbortController();
    before.abort(new Error('cancelled before'));
    await expect(
      runTool('calculator', { expression: '1' }, context(before.signal)),
    ).rejects.toThrow('cancelled before');

    const during = new AbortController();
    const reason = new Error('cancelled during');
    const tools = {
      slow: defineTool({
        name: 'slow',
        description: 'x',
        schema: v.strictObject({}),
        run: async (_args, ctx) => {
          during.abort(reason);
          throw ctx.signal.reason;
        },
      }),
    };
    await expect(runTool('slow', {}, context(during.signal), tools)).rejects.toBe(reason);
  });

  it('never throws for any name and arguments', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...TOOL_NAMES), fc.string()),
        fc.oneof(
          fc.anything(),
          fc.record({ expression: fc.string() }),
          fc.record({ timezone: fc.string() }),
          fc.record({ url: fc.webUrl() }),
        ),
        async (name, args) => {
          const outcome = await runTool(name, args, context());
          expect(typeof outcome.ok).toBe('boolean');
          if (!outcome.ok) expect(typeof outcome.error).toBe('string');
        },
      ),
      { numRuns: 300 },
    );
  });
});
