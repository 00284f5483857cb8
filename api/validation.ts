/**
 * Turns valibot results into the API's 400s. Messages name the field
 * (`config.provider: must be one of …`, `unknown field "foo"`), and `details`
 * lists every issue so a client can show them all.
 */
import * as v from 'valibot';
import { ApiError, type ApiErrorCode } from './errors.ts';

export interface IssueDetail {
  field: string;
  message: string;
}

function fieldOf(issue: v.BaseIssue<unknown>, at: string): string {
  const path = (issue.path ?? []).map((p) => String(p.key)).join('.');
  return at && path ? `${at}.${path}` : at || path;
}

function describe(issue: v.BaseIssue<unknown>, at: string): IssueDetail {
  const field = fieldOf(issue, at);
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    return { field, message: `unknown field "${field}"` };
  }
  if (issue.kind === 'schema' && issue.received === 'undefined') {
    return { field, message: `${field} is required` };
  }
  if (issue.kind === 'schema' && !issue.message.startsWith('must')) {
    return {
      field,
      message: `${field || 'body'}: expected ${issue.expected}, got ${issue.received}`,
    };
  }
  return { field, message: `${field || 'body'}: ${issue.message}` };
}

/**
 * Each issue with the field it concerns; `at` prefixes every field (a batch
 * item's `tasks[3]`, so its fields read `tasks[3].config.model`).
 */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[], at = ''): IssueDetail[] {
  return issues.map((issue) => describe(issue, at));
}

/** Parses or throws a 400 whose message names the first bad field. */
export function parseOr400<TSchema extends v.GenericSchema>(
  schema: TSchema,
  value: unknown,
  code: ApiErrorCode = 'invalid_request',
): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issues = describeIssues(result.issues);
  throw new ApiError(400, code, issues[0]!.message, { issues });
}

/** The query string as a plain object; a repeated parameter is a 400. */
export function queryObject(url: string): Record<string, string> {
  const params = new URL(url).searchParams;
  const out: Record<string, string> = {};
  for (const [key, value] of params) {
    if (key in out)
      throw new ApiError(400, 'invalid_request', `query parameter "${key}" is repeated`);
    out[key] = value;
  }
  return out;
}

const MAX_DEPTH = 32;

/**
 * Postgres jsonb cannot store NUL (\u0000) or unpaired surrogates, and deep
 * nesting is never a real task's metadata. Screened here, iteratively (no
 * recursion to overflow), so they are a 400 naming the field, not a 500.
 */
export function assertStorableJson(value: unknown, root = 'body'): void {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value, path: root, depth: 0 },
  ];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item.depth > MAX_DEPTH) {
      throw new ApiError(
        400,
        'invalid_request',
        `${item.path}: nested deeper than ${MAX_DEPTH} levels`,
      );
    }
    if (typeof item.value === 'string') {
      checkString(item.value, item.path);
    } else if (Array.isArray(item.value)) {
      item.value.forEach((v, i) =>
        stack.push({ value: v, path: `${item.path}.${i}`, depth: item.depth + 1 }),
      );
    } else if (item.value !== null && typeof item.value === 'object') {
      for (const [k, v] of Object.entries(item.value)) {
        checkString(k, `${item.path} (a key)`);
        stack.push({ value: v, path: `${item.path}.${k}`, depth: item.depth + 1 });
      }
    }
  }
}

function checkString(s: string, path: string): void {
  if (s.includes('\u0000')) {
    throw new ApiError(
      400,
      'invalid_request',
      `${path}: contains a NUL character (\\u0000), which cannot be stored`,
    );
  }
  if (!s.isWellFormed()) {
    throw new ApiError(400, 'invalid_request', `${path}: contains an unpaired UTF-16 surrogate`);
  }
}
