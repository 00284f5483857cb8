// The calculator's parser: grammar, functions, error messages, hostile input,
// and a property test against an independent evaluator.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateExpression } from '../../worker/tools/arithmetic.ts';
import { ToolError } from '../../worker/tools/tool.ts';

function failure(text: string): ToolError {
  try {
    evaluateExpression(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ToolError);
    return error as ToolError;
  }
  throw new Error(`expected "${text.slice(0, 40)}" to fail`);
}

describe('evaluateExpression', () => {
  it.each([
    ['42', 42],
    ['3.5', 3.5],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1.5E-3', 0.0015],
    ['2e+2', 200],
    [' 1 +\t2\n', 3],
  ])('reads numbers and whitespace: %j = %d', (text, expected) => {
    expect(evaluateExpression(text)).toBe(expected);
  });

  it.each([
    ['1+2*3', 7],
    ['(1+2)*3', 9],
    ['10-4-3', 3],
    ['100/10/5', 2],
    ['2^3^2', 512],
    ['2**3**2', 512],
    ['(2^3)^2', 64],
    ['-2^2', -4],
    ['(-2)^2', 4],
    ['2^-1', 0.5],
    ['2*-3', -6],
    ['--3', 3],
    ['+3', 3],
    ['1 - -1', 2],
    ['-3*2', -6],
    ['7%3', 1],
    ['-7%3', -1],
    ['2+3*4^2', 50],
    ['8/2*4', 16],
    ['2*3%4', 2],
    ['6×7', 42],
    ['8÷2', 4],
    ['5−3', 2],
  ])('applies precedence and associativity: %s = %d', (text, expected) => {
    expect(evaluateExpression(text)).toBe(expected);
  });

  it.each([
    ['pi', Math.PI],
    ['e', Math.E],
    ['PI', Math.PI],
    ['2*pi', 2 * Math.PI],
    ['sqrt(16)', 4],
    ['SQRT(4)', 2],
    ['abs(-3)', 3],
    ['round(2.5)', 3],
    ['floor(-1.5)', -2],
    ['ceil(1.2)', 2],
    ['ln(e)', 1],
    ['log(e^2)', 2],
    ['log10(1000)', 3],
    ['log2(8)', 3],
    ['exp(0)', 1],
    ['sin(0)', 0],
    ['cos(0)', 1],
    ['tan(0)', 0],
    ['asin(1)', Math.PI / 2],
    ['acos(1)', 0],
    ['atan(1)', Math.PI / 4],
    ['min(3, 1, 2)', 1],
    ['max(3, 1, 2)', 3],
    ['max(5)', 5],
    ['pow(2, 10)', 1024],
    ['sqrt(max(9, 16)) + min(1, -1)', 3],
    ['-sqrt(4)^2', -4],
  ])('knows constants and functions: %s', (text, expected) => {
    expect(evaluateExpression(text)).toBeCloseTo(expected, 12);
  });

  it('never returns negative zero', () => {
    expect(Object.is(evaluateExpression('-0'), 0)).toBe(true);
    expect(Object.is(evaluateExpression('0*-1'), 0)).toBe(true);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['foo', /unknown name "foo" at position 1/],
    ['1 + x', /unknown name "x" at position 5/],
    ['1 +', /ends where a number was expected/],
    ['(1+2', /"\(" at position 1 is never closed/],
    ['1+2)', /unexpected "\)" at position 4/],
    ['max(1, 2', /never closed/],
    ['2 3', /unexpected "3" at position 3/],
    ['2pi', /unexpected "pi" at position 2/],
    ['1,2', /unexpected "," at position 2/],
    ['*2', /expected a number but found "\*" at position 1/],
    ['1 # 2', /unexpected character "#" at position 3/],
    ['sqrt', /sqrt at position 1 must be followed by "\("/],
    ['sqrt 4', /must be followed by "\("/],
    ['sqrt()', /takes 1 argument/],
    ['pow(1)', /takes 2 argument/],
    ['min()', /at least 1 argument/],
    ['1/0', /division by zero at position 2/],
    ['1/(2-2)', /division by zero/],
    ['5%0', /modulo by zero at position 2/],
    ['10^400', /no finite result/],
    ['exp(1000)', /no finite result/],
    ['log(0)', /no finite result/],
    ['0^-1', /no finite result/],
    ['sqrt(-1)', /sqrt\(-1\).*not a real number/],
    ['(-8)^(1/3)', /not a real number/],
    ['asin(2)', /not a real number/],
    ['1e999', /number "1e999" at position 1 is too large/],
  ])('refuses %j with a clear message', (text, message) => {
    expect(failure(text).message).toMatch(message);
  });

  describe('hostile input', () => {
    it('refuses 100k nested parentheses quickly, without touching the stack', () => {
      const started = performance.now();
      expect(failure(`${'('.repeat(100_000)}1${')'.repeat(100_000)}`).message).toMatch(/too long/);
      expect(performance.now() - started).toBeLessThan(1000);
    });

    it('refuses a 1 MB string', () => {
      expect(failure('1+'.repeat(500_000) + '1').message).toMatch(/too long \(1000001 characters/);
      expect(failure('x'.repeat(1_000_000)).message).toMatch(/too long/);
    });

    it('bounds nesting within the length limit', () => {
      expect(evaluateExpression(`${'('.repeat(99)}1${')'.repeat(99)}`)).toBe(1);
      expect(failure(`${'('.repeat(150)}1${')'.repeat(150)}`).message).toMatch(/nested too deeply/);
      expect(failure(`${'-'.repeat(200)}1`).message).toMatch(/nested too deeply/);
      expect(failure(`${'2^'.repeat(150)}1`).message).toMatch(/nested too deeply/);
      expect(failure(`${'sqrt('.repeat(150)}1${')'.repeat(150)}`).message).toMatch(
        /nested too deeply/,
      );
    });

    it('bounds the number of tokens', () => {
      expect(evaluateExpression('1+'.repeat(249) + '1')).toBe(250);
      expect(failure('1+'.repeat(300) + '1').message).toMatch(/too many tokens/);
    });

    it.each([
      'constructor',
      'constructor()',
      '__proto__',
      'toString()',
      'hasOwnProperty',
      'process.exit()',
      'require("fs")',
      'globalThis',
      'this',
      'Function("return 1")()',
      '[].constructor',
      '`1`',
      "'1'",
      '1;2',
      'x=1',
      '0x10',
    ])('treats %j as a bad expression, never as code', (text) => {
      failure(text);
    });
  });

  describe('agrees with an independent evaluator on random expressions', () => {
    type Node =
      | { kind: 'num'; value: number }
      | { kind: 'neg'; operand: Node }
      | { kind: 'bin'; op: '+' | '-' | '*' | '/' | '%' | '^'; left: Node; right: Node };

    const node = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.record({ kind: fc.constant('num' as const), value: fc.integer({ min: 0, max: 20 }) }),
        fc.record({ kind: fc.constant('neg' as const), operand: tie('node') }),
        fc.record({
          kind: fc.constant('bin' as const),
          op: fc.constantFrom('+', '-', '*', '/', '%', '^'),
          left: tie('node'),
          right: tie('node'),
        }),
      ),
    })).node;

    // The test's own evaluator: plain JavaScript arithmetic over the tree,
    // with undefined standing for "the calculator must refuse this".
    function expected(n: Node): number | undefined {
      if (n.kind === 'num') return n.value;
      if (n.kind === 'neg') {
        const value = expected(n.operand);
        return value === undefined ? undefined : -value;
      }
      const a = expected(n.left);
      const b = expected(n.right);
      if (a === undefined || b === undefined) return undefined;
      if ((n.op === '/' || n.op === '%') && b === 0) return undefined;
      const ops = { '+': a + b, '-': a - b, '*': a * b, '/': a / b, '%': a % b, '^': a ** b };
      const value = ops[n.op];
      return Number.isFinite(value) ? value : undefined;
    }

    const PRECEDENCE = { '+': 1, '-': 1, '*': 2, '/': 2, '%': 2, neg: 3, '^': 4, num: 5 };
    const precedence = (n: Node) => PRECEDENCE[n.kind === 'bin' ? n.op : n.kind];

    // Prints with the fewest parentheses the grammar allows, so precedence and
    // associativity are what is being tested.
    function print(n: Node, space: string): string {
      if (n.kind === 'num') return String(n.value);
      const wrap = (child: Node, needed: boolean) =>
        needed ? `(${print(child, space)})` : print(child, space);
      if (n.kind === 'neg') return `-${wrap(n.operand, precedence(n.operand) < PRECEDENCE.neg)}`;
      const p = PRECEDENCE[n.op];
      const rightAssoc = n.op === '^';
      const left = wrap(
        n.left,
        precedence(n.left) < p ||
          (rightAssoc && precedence(n.left) === p) ||
          (rightAssoc && n.left.kind === 'neg'),
      );
      const right = wrap(
        n.right,
        precedence(n.right) < p || (!rightAssoc && precedence(n.right) === p),
      );
      return `${left}${space}${n.op}${space}${right}`;
    }

    it('for small integer expressions', () => {
      fc.assert(
        fc.property(node, fc.constantFrom('', ' '), (tree, space) => {
          const text = print(tree, space);
          fc.pre(text.length <= 1000);
          const want = expected(tree);
          if (want === undefined) {
            expect(() => evaluateExpression(text)).toThrow(ToolError);
          } else {
            expect(evaluateExpression(text)).toBe(want === 0 ? 0 : want);
          }
        }),
        { numRuns: 500 },
      );
    });
  });
});
