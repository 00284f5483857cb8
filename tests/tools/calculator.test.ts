// The calculator tool around the parser: its output shape and rounding.
import { describe, expect, it } from 'vitest';
import { calculatorTool } from '../../worker/tools/calculator.ts';
import { ToolError } from '../../worker/tools/tool.ts';

const context = { signal: new AbortController().signal, httpAllowlist: [] };

describe('calculator', () => {
  it('returns the expression and its result', async () => {
    await expect(calculatorTool.run({ expression: '(3 + 4) * 6' }, context)).resolves.toEqual({
      expression: '(3 + 4) * 6',
      result: 42,
    });
  });

  it('hides floating-point noise but keeps large integers exact', async () => {
    expect(await calculatorTool.run({ expression: '0.1 + 0.2' }, context)).toMatchObject({
      result: 0.3,
    });
    expect(await calculatorTool.run({ expression: '2^53' }, context)).toMatchObject({
      result: 2 ** 53,
    });
    expect(await calculatorTool.run({ expression: '1/3' }, context)).toMatchObject({
      result: 0.333333333333333,
    });
  });

  it('reports a bad expression as a ToolError', async () => {
    await expect(calculatorTool.run({ expression: '1/0' }, context)).rejects.toThrow(ToolError);
  });

  it('describes what it supports', () => {
    for (const word of ['sqrt', 'pi', '^', '%', 'min', 'max', 'log10']) {
      expect(calculatorTool.description).toContain(word);
    }
  });
});
