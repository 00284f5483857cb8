/**
 * Keeps step-log events a sensible size. Long strings are cut with a visible
 * marker and the event says so (`truncated: true`); nothing is dropped silently.
 * The model still receives the full tool output; only the log is shortened.
 */
export const MAX_EVENT_STRING = 16 * 1024;

export function truncateForLog(value: unknown): { value: unknown; truncated: boolean } {
  let truncated = false;
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') {
      if (v.length <= MAX_EVENT_STRING) return v;
      truncated = true;
      return `${v.slice(0, MAX_EVENT_STRING)}…[truncated ${v.length - MAX_EVENT_STRING} characters]`;
    }
    if (depth > 20) {
      truncated = true;
      return '[truncated: nested too deeply]';
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, depth + 1)]));
    }
    return v;
  };
  const value2 = walk(value, 0);
  return { value: value2, truncated };
}
