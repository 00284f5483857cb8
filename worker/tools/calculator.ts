/**
 * The `calculator` tool: evaluates one arithmetic expression with the parser in
 * arithmetic.ts, so the model does not have to do arithmetic in its head.
 */
import * as v from 'valibot';
import { ARITHMETIC_LIMITS, evaluateExpression } from './arithmetic.ts';
import { defineTool } from './tool.ts';

const schema = v.strictObject({
  expression: v.pipe(
    v.string('must be a string'),
    v.minLength(1, 'must not be empty'),
    v.maxLength(
      ARITHMETIC_LIMITS.maxLength,
      `must be at most ${ARITHMETIC_LIMITS.maxLength} characters`,
    ),
    v.description('The expression to evaluate, for example "(3.5 + 2) * 4^2 / sqrt(2)".'),
  ),
});

export const calculatorTool = defineTool({
  name: 'calculator',
  description:
    'Evaluates an arithmetic expression and returns the exact numeric result. ' +
    'Supports numbers (12, 3.75, 1e3), + - * /, % (remainder), ^ or ** (power, right-associative), ' +
    'unary minus, parentheses, the constants pi and e, and the functions sqrt, abs, round, floor, ceil, ' +
    'ln and log (natural log), log10, log2, exp, sin, cos, tan, asin, acos, atan (radians), ' +
    'min and max (any number of arguments) and pow(x, y). ' +
    'No variables, units, percent signs or implicit multiplication: write 2*pi, not 2pi.',
  schema,
  async run({ expression }) {
    return { expression, result: presentable(evaluateExpression(expression)) };
  },
});

/**
 * Rounds away binary floating-point noise (0.1 + 0.2 → 0.3, not
 * 0.30000000000000004) that a model would otherwise repeat to the user.
 * Integers are left alone: 15 significant digits would corrupt large ones.
 */
function presentable(value: number): number {
  return Number.isInteger(value) ? value : Number(value.toPrecision(15));
}
