/**
 * Reading JSON log lines as text: JSON.parse keeps the last of two equal keys
 * silently, so a duplicated key (pino writes base fields and child bindings
 * side by side) is only visible in the raw line.
 */

/** The top-level keys of one JSON object line, in order, duplicates included. */
export function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let end = i + 1;
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** Keys that occur more than once at the top level of a log line. */
export function duplicateKeys(line: string): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const key of topLevelKeys(line)) (seen.has(key) ? dup : seen).add(key);
  return [...dup];
}
