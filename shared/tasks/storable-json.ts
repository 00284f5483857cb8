/**
 * JSON that Postgres will store in a jsonb column, whatever text went into it.
 *
 * jsonb refuses two things a JavaScript string can hold: U+0000 ("unsupported
 * Unicode escape sequence") and a lone UTF-16 surrogate, which JSON.stringify
 * writes as `\udXXX` and Postgres cannot turn into UTF-8. A model answer, a
 * tool's arguments or output, or a fetched page can contain either, and used
 * to fail the task with internal_error. Every string and every object key is
 * therefore cleaned on the way in: each NUL and each lone surrogate becomes
 * U+FFFD (the replacement character), so the stored text keeps its length and
 * shows where something was replaced. Text that is already well-formed and
 * NUL-free is stored unchanged. Two keys that differ only in replaced
 * characters collapse into one (the later wins), as jsonb does with duplicate
 * keys. Only what is stored is cleaned: the model still gets the original.
 */

/** A NUL, a high surrogate not followed by a low one, or a low one not preceded by a high one. */
// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** `text` with every NUL and lone surrogate replaced by U+FFFD. */
export function storableString(text: string): string {
  UNSTORABLE.lastIndex = 0;
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE, '\ufffd') : text;
}

/** Cleans strings and keys as JSON.stringify visits them (after toJSON, so Dates still work). */
function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return storableString(value);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const entries = Object.entries(value);
  if (!entries.some(([k]) => storableString(k) !== k)) return value;
  return Object.fromEntries(entries.map(([k, v]) => [storableString(k), v]));
}

/** JSON.stringify for a jsonb parameter: every string and key well-formed and NUL-free. */
export function toStorableJson(value: unknown): string {
  return JSON.stringify(value, replacer);
}
