/**
 * The calculator's arithmetic: a tokenizer, a Pratt parser that builds a small
 * syntax tree, and an evaluator over it. Never `eval`/`Function`: the input
 * comes from a model that may have been steered by a hostile prompt.
 *
 * Grammar (loosest to tightest): `+ -`, `* / %`, unary `- +`, `^`/`**` (right
 * associative, so `2^3^2` is `2^(3^2)` and `-2^2` is `-(2^2)`), then numbers,
 * constants, function calls and parentheses.
 *
 * Every problem is a `ToolError` whose message says what and where (1-based
 * character positions), because the model reads it and should fix its input.
 */
import { ToolError } from './tool.ts';

/** Bounds that keep hostile input cheap: no stack overflow, no long loops. */
export const ARITHMETIC_LIMITS = {
  /** Longest accepted expression, in characters. */
  maxLength: 1000,
  /** Most tokens (numbers, names, operators, parentheses) in one expression. */
  maxTokens: 500,
  /** Deepest nesting of parentheses, calls and operators parsed by recursion. */
  maxDepth: 100,
} as const;

type Token =
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'name'; text: string; pos: number }
  | { kind: 'op'; text: string; pos: number }
  | { kind: 'end'; text: string; pos: number };

export type ExpressionNode =
  | { kind: 'number'; value: number; pos: number }
  | { kind: 'unary'; op: '-' | '+'; operand: ExpressionNode; pos: number }
  | { kind: 'binary'; op: string; left: ExpressionNode; right: ExpressionNode; pos: number }
  | { kind: 'call'; name: string; args: ExpressionNode[]; pos: number };

const CONSTANTS = new Map<string, number>([
  ['pi', Math.PI],
  ['e', Math.E],
]);

/** name → [fewest args, most args, implementation]. A Map, so `constructor` is not a function. */
const FUNCTIONS = new Map<string, [number, number, (...args: number[]) => number]>([
  ['sqrt', [1, 1, Math.sqrt]],
  ['abs', [1, 1, Math.abs]],
  ['round', [1, 1, Math.round]],
  ['floor', [1, 1, Math.floor]],
  ['ceil', [1, 1, Math.ceil]],
  ['ln', [1, 1, Math.log]],
  ['log', [1, 1, Math.log]],
  ['log10', [1, 1, Math.log10]],
  ['log2', [1, 1, Math.log2]],
  ['exp', [1, 1, Math.exp]],
  ['sin', [1, 1, Math.sin]],
  ['cos', [1, 1, Math.cos]],
  ['tan', [1, 1, Math.tan]],
  ['asin', [1, 1, Math.asin]],
  ['acos', [1, 1, Math.acos]],
  ['atan', [1, 1, Math.atan]],
  ['min', [1, Infinity, Math.min]],
  ['max', [1, Infinity, Math.max]],
  ['pow', [2, 2, Math.pow]],
]);

/** Typographic operators a model may copy from prose, mapped to ASCII. */
const OPERATOR_ALIASES: Record<string, string> = { '×': '*', '÷': '/', '−': '-' };

/** Binding powers of infix operators: [left, right]. Right < left makes `^` right-associative. */
const INFIX: Record<string, [number, number]> = {
  '+': [10, 11],
  '-': [10, 11],
  '*': [20, 21],
  '/': [20, 21],
  '%': [20, 21],
  '^': [40, 39],
  '**': [40, 39],
};
/** Operand binding power of unary minus/plus: tighter than `*`, looser than `^`. */
const PREFIX_POWER = 30;

const NUMBER = /\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const push = (token: Token) => {
    if (tokens.length >= ARITHMETIC_LIMITS.maxTokens) {
      throw new ToolError(
        `expression has too many tokens (at most ${ARITHMETIC_LIMITS.maxTokens})`,
      );
    }
    tokens.push(token);
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const pos = i + 1;
    NUMBER.lastIndex = i;
    NAME.lastIndex = i;
    const number = NUMBER.exec(text);
    const name = number ? null : NAME.exec(text);
    if (number) {
      const value = Number(number[0]);
      if (!Number.isFinite(value))
        throw new ToolError(`number "${number[0]}" at position ${pos} is too large`);
      push({ kind: 'number', value, text: number[0], pos });
      i += number[0].length;
    } else if (name) {
      push({ kind: 'name', text: name[0], pos });
      i += name[0].length;
    } else if (text.startsWith('**', i)) {
      push({ kind: 'op', text: '**', pos });
      i += 2;
    } else if ('+-*/%^(),'.includes(ch) || Object.hasOwn(OPERATOR_ALIASES, ch)) {
      push({ kind: 'op', text: OPERATOR_ALIASES[ch] ?? ch, pos });
      i++;
    } else {
      throw new ToolError(`unexpected character "${ch}" at position ${pos}`);
    }
  }
  tokens.push({ kind: 'end', text: 'end of input', pos: text.length + 1 });
  return tokens;
}

function describe(token: Token): string {
  return token.kind === 'end' ? 'end of input' : `"${token.text}" at position ${token.pos}`;
}

/** Parses an expression into a tree; throws ToolError on any syntax problem. */
export function parseExpression(text: string): ExpressionNode {
  if (text.length > ARITHMETIC_LIMITS.maxLength) {
    throw new ToolError(
      `expression is too long (${text.length} characters, at most ${ARITHMETIC_LIMITS.maxLength})`,
    );
  }
  if (text.trim() === '') throw new ToolError('expression is empty');
  const tokens = tokenize(text);
  let index = 0;
  let depth = 0;
  const peek = (): Token => tokens[index]!;
  const next = (): Token => tokens[index++] ?? tokens[tokens.length - 1]!;
  const expectClose = (open: Token) => {
    const token = next();
    if (token.kind === 'op' && token.text === ')') return;
    if (token.kind === 'end')
      throw new ToolError(`unbalanced parentheses: "(" at position ${open.pos} is never closed`);
    throw new ToolError(
      `expected ")" to close "(" at position ${open.pos} but found ${describe(token)}`,
    );
  };

  // Every recursive descent goes through here, so one counter bounds the stack.
  function expression(minPower: number): ExpressionNode {
    if (++depth > ARITHMETIC_LIMITS.maxDepth) {
      throw new ToolError(
        `expression is nested too deeply (at most ${ARITHMETIC_LIMITS.maxDepth} levels)`,
      );
    }
    let left = operand();
    for (;;) {
      const token = peek();
      const powers = token.kind === 'op' ? INFIX[token.text] : undefined;
      if (!powers || powers[0] < minPower) break;
      next();
      left = { kind: 'binary', op: token.text, left, right: expression(powers[1]), pos: token.pos };
    }
    depth--;
    return left;
  }

  function operand(): ExpressionNode {
    const token = next();
    if (token.kind === 'number') return { kind: 'number', value: token.value, pos: token.pos };
    if (token.kind === 'op' && (token.text === '-' || token.text === '+')) {
      return { kind: 'unary', op: token.text, operand: expression(PREFIX_POWER), pos: token.pos };
    }
    if (token.kind === 'op' && token.text === '(') {
      const inner = expression(0);
      expectClose(token);
      return inner;
    }
    if (token.kind === 'name') return named(token);
    if (token.kind === 'end') throw new ToolError('expression ends where a number was expected');
    if (token.text === ')')
      throw new ToolError(`unbalanced parentheses: unexpected ")" at position ${token.pos}`);
    throw new ToolError(`expected a number but found ${describe(token)}`);
  }

  function named(token: Token): ExpressionNode {
    const name = token.text.toLowerCase();
    const constant = CONSTANTS.get(name);
    const fn = FUNCTIONS.get(name);
    const open = peek();
    if (fn && open.kind === 'op' && open.text === '(') {
      next();
      const args: ExpressionNode[] = [];
      if (!(peek().kind === 'op' && peek().text === ')')) {
        args.push(expression(0));
        while (peek().kind === 'op' && peek().text === ',') {
          next();
          args.push(expression(0));
        }
      }
      expectClose(open);
      const [fewest, most] = fn;
      if (args.length < fewest || args.length > most) {
        const wanted =
          fewest === most
            ? `${fewest}`
            : most === Infinity
              ? `at least ${fewest}`
              : `${fewest} to ${most}`;
        throw new ToolError(
          `${name}() at position ${token.pos} takes ${wanted} argument(s), got ${args.length}`,
        );
      }
      return { kind: 'call', name, args, pos: token.pos };
    }
    if (fn)
      throw new ToolError(`function ${name} at position ${token.pos} must be followed by "("`);
    if (constant !== undefined) return { kind: 'number', value: constant, pos: token.pos };
    throw new ToolError(
      `unknown name "${token.text}" at position ${token.pos}; known constants: pi, e; functions: ${[...FUNCTIONS.keys()].join(', ')}`,
    );
  }

  const tree = expression(0);
  const rest = peek();
  if (rest.kind !== 'end') {
    if (rest.text === ')')
      throw new ToolError(`unbalanced parentheses: unexpected ")" at position ${rest.pos}`);
    throw new ToolError(`unexpected ${describe(rest)}; expected an operator or the end`);
  }
  return tree;
}

/** Evaluates a parsed tree; refuses division by zero and non-finite or non-real results. */
export function evaluateTree(node: ExpressionNode): number {
  switch (node.kind) {
    case 'number':
      return node.value;
    case 'unary': {
      const value = evaluateTree(node.operand);
      return node.op === '-' ? -value : value;
    }
    case 'binary': {
      const a = evaluateTree(node.left);
      const b = evaluateTree(node.right);
      if ((node.op === '/' || node.op === '%') && b === 0) {
        throw new ToolError(
          `${node.op === '/' ? 'division' : 'modulo'} by zero at position ${node.pos}`,
        );
      }
      return checked(applyBinary(node.op, a, b), `${a} ${node.op} ${b} (position ${node.pos})`);
    }
    case 'call': {
      const fn = FUNCTIONS.get(node.name)!;
      const args = node.args.map(evaluateTree);
      return checked(fn[2](...args), `${node.name}(${args.join(', ')}) (position ${node.pos})`);
    }
  }
}

function applyBinary(op: string, a: number, b: number): number {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / b;
    case '%':
      return a % b;
    default:
      return a ** b;
  }
}

function checked(value: number, what: string): number {
  if (Number.isNaN(value)) throw new ToolError(`${what} is not a real number`);
  if (!Number.isFinite(value))
    throw new ToolError(`${what} has no finite result (it overflows or is infinite)`);
  return value;
}

/** Parses and evaluates `text`; throws ToolError with a readable message on any problem. */
export function evaluateExpression(text: string): number {
  const value = evaluateTree(parseExpression(text));
  // -0 is a floating-point artefact nobody wants to read in an answer.
  return value === 0 ? 0 : value;
}
